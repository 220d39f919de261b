"""`posthorn config check` on the files the config names: the aliases file (problems by
line number, :include: files, refused targets), the TLS certificate and key (loadable,
matching, valid now, naming the host, private), DKIM keys and the AUTH password file.
Errors exit 78 (EX_CONFIG) with a message naming the file and the fix; warnings do not
fail. Keys and certificates are made with Posthorn's own commands where they can be."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from support.server import Server, env, posthorn_cmd
from support.tls_cert import self_signed
from support.tlsauth import make_pki

HOST = "mx.example.org"


def posthorn(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        posthorn_cmd(*args), input=stdin, capture_output=True, text=True, env=env(), timeout=60
    )


def check(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "posthorn.toml"
    config.write_text(f'[server]\nhostname = "{HOST}"\n' + text)
    data = tmp_path / "data"
    return posthorn("config", "check", "--config", str(config), "--data-dir", str(data))


def selfsigned(directory: Path, hostname: str = HOST) -> tuple[Path, Path]:
    """A certificate and key made by `posthorn tls selfsigned`."""
    pki = make_pki(directory, hostname)
    return pki.cert, pki.key


def tls(cert: Path, key: Path) -> str:
    return f'[tls]\ncert = "{cert}"\nkey = "{key}"\n'


def test_a_complete_good_config_passes(tmp_path: Path) -> None:
    cert, key = selfsigned(tmp_path / "tls")
    dkim = tmp_path / "dkim" / "example.org.pem"
    made = posthorn("dkim", "keygen", "example.org", "--key", str(dkim))
    assert made.returncode == 0, made.stderr
    passwd = tmp_path / "passwd"
    added = posthorn("passwd", "alice", "--file", str(passwd), stdin="s3cret\n")
    assert added.returncode == 0, added.stderr
    aliases = tmp_path / "aliases"
    aliases.write_text("postmaster: alice\nstaff: alice, bob@example.net\n")
    text = (
        tls(cert, key)
        + f'[dkim]\nkeys = {{ "example.org" = "{dkim}" }}\n'
        + f'[auth]\npassword_file = "{passwd}"\n'
        + f'[aliases]\nfile = "{aliases}"\n'
        + '[submission]\nlisten = ["127.0.0.1:5870"]\n'
    )
    result = check(tmp_path, text)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("config ok;")


def test_aliases_problems_with_line_numbers(tmp_path: Path) -> None:
    aliases = tmp_path / "aliases"
    aliases.write_text(
        "# staff\n"
        "staff: alice, bob\n"
        "no colon here\n"
        "staff: carol\n"
        "list: :include:/no/such/list\n"
        'tickets: "|/usr/bin/ticket"\n'
    )
    result = check(tmp_path, f'[aliases]\nfile = "{aliases}"\n')
    assert result.returncode == 78
    err = result.stderr
    where = f"aliases.file {aliases}"
    assert f"error: {where}: line 3: missing ':' after the name: 'no colon here'" in err
    assert f"error: {where}: line 4: duplicate alias 'staff' (first on line 2)" in err
    assert f"error: {where}: :include: /no/such/list: cannot read: No such file" in err
    refused = "tickets's pipe target is refused (aliases.allow_pipes is false)"
    assert f"warning: {where}: line 6: {refused}" in err
    assert "3 error(s)" in err
    result = check(tmp_path, '[aliases]\nfile = "/no/such/aliases"\n')
    assert result.returncode == 78
    assert "aliases.file /no/such/aliases: no such file" in result.stderr


def test_key_that_does_not_belong_to_the_certificate(tmp_path: Path) -> None:
    cert, _ = selfsigned(tmp_path / "one")
    _, other = selfsigned(tmp_path / "two")
    result = check(tmp_path, tls(cert, other))
    assert result.returncode == 78
    assert f"error: tls.key {other} does not belong to the certificate in {cert}" in result.stderr


@pytest.mark.parametrize(
    ("start", "end", "code", "message"),
    [
        (-30, -1, 78, "error: tls.cert {cert} expired on "),
        (2, 30, 78, "error: tls.cert {cert} is not valid before "),
        (-1, 10, 0, "warning: tls.cert {cert} expires on "),
    ],
)
def test_certificate_validity(
    tmp_path: Path, start: float, end: float, code: int, message: str
) -> None:
    cert, key = self_signed(tmp_path / "tls", HOST, start=start, end=end)
    result = check(tmp_path, tls(cert, key))
    assert result.returncode == code, result.stderr
    assert message.format(cert=cert) in result.stderr


def test_certificate_for_another_host_is_a_warning(tmp_path: Path) -> None:
    cert, key = selfsigned(tmp_path / "tls", "other.example.net")
    result = check(tmp_path, tls(cert, key))
    assert result.returncode == 0
    assert (
        f"warning: tls.cert {cert} does not name server.hostname {HOST} "
        "(other.example.net, localhost)"
    ) in result.stderr


def test_unusable_key_files(tmp_path: Path) -> None:
    cert, key = selfsigned(tmp_path / "tls")
    key.chmod(0o644)
    result = check(tmp_path, tls(cert, key))
    assert result.returncode == 78
    assert f"tls.key {key} is readable by everyone (mode 644); chmod o-r" in result.stderr
    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    key.chmod(0o600)
    result = check(tmp_path, tls(cert, key))
    assert result.returncode == 78
    assert f"tls.key {key} is encrypted; Posthorn needs it without a passphrase" in result.stderr
    result = check(tmp_path, tls(cert, tmp_path / "missing.pem"))
    assert result.returncode == 78
    assert f"tls.key {tmp_path / 'missing.pem'}: no such file" in result.stderr
    key.write_text("not a key\n")
    result = check(tmp_path, tls(cert, key))
    assert f"tls.key {key} is not a PEM private key" in result.stderr
    cert.write_text("not a certificate\n")
    result = check(tmp_path, tls(cert, key))
    assert f"tls.cert {cert} holds no PEM certificate" in result.stderr


def test_submission_needs_tls(tmp_path: Path) -> None:
    result = check(tmp_path, '[submission]\ntls_listen = ["127.0.0.1:4650"]\n')
    assert result.returncode == 78
    assert "error: submission.tls_listen needs tls.cert and tls.key" in result.stderr
    result = check(tmp_path, '[submission]\nlisten = ["127.0.0.1:5870"]\n')
    assert result.returncode == 0
    assert "warning: submission.listen without tls.cert: no STARTTLS" in result.stderr
    assert "auth.password_file" in result.stderr  # and nobody could log in anyway


def test_dkim_keys(tmp_path: Path) -> None:
    missing = tmp_path / "dkim" / "missing.pem"
    result = check(tmp_path, f'[dkim]\nkeys = {{ "example.org" = "{missing}" }}\n')
    assert result.returncode == 78
    assert f"error: dkim.keys.example.org {missing}: no such file" in result.stderr
    _, ec_key = selfsigned(tmp_path / "tls")  # an EC key: DKIM here signs with RSA
    result = check(tmp_path, f'[dkim]\nkeys = {{ "example.org" = "{ec_key}" }}\n')
    assert result.returncode == 78
    assert f"error: dkim: {ec_key}: only RSA keys are supported" in result.stderr
    good = tmp_path / "dkim" / "good.pem"
    assert posthorn("dkim", "keygen", "example.org", "--key", str(good)).returncode == 0
    good.chmod(0o644)
    text = f'[dkim]\nkeys = {{ "example.org" = "{good}" }}\nselectors = {{ "other.org" = "s1" }}\n'
    result = check(tmp_path, text)
    assert result.returncode == 78
    assert f"dkim.keys.example.org {good} is readable by everyone" in result.stderr
    assert "warning: dkim.selectors.other.org: no key for other.org in dkim.keys" in result.stderr


def test_password_file(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    added = posthorn("passwd", "alice", "--file", str(passwd), stdin="s3cret\n")
    assert added.returncode == 0, added.stderr
    with passwd.open("a") as out:
        out.write("bob:plaintext-password\n")
    result = check(tmp_path, f'[auth]\npassword_file = "{passwd}"\n')
    assert result.returncode == 78
    assert f"error: auth.password_file: {passwd}:2: expected user:$scrypt$... hash" in (
        result.stderr
    )
    passwd.write_text(passwd.read_text().splitlines()[0] + "\n")
    passwd.chmod(0o644)
    result = check(tmp_path, f'[auth]\npassword_file = "{passwd}"\n')
    assert result.returncode == 0
    assert f"warning: auth.password_file {passwd} is readable by everyone" in result.stderr


def test_running_servers_files_check_out(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    # The same checks against a server that runs with TLS and aliases (as deployed).
    cert, key = selfsigned(tmp_path / "tls", "mx.test")
    aliases = tmp_path / "aliases"
    aliases.write_text("staff: alice\n")
    server = make_server(tls(cert, key) + f'[aliases]\nfile = "{aliases}"\n')
    result = posthorn(
        "config", "check", "--config", str(server.config_path), "--data-dir", str(server.data_dir)
    )
    assert result.returncode == 0, result.stderr
    # (The server's queue database may draw a permission warning; nothing else may.)
    assert "tls." not in result.stderr
    assert "aliases." not in result.stderr
