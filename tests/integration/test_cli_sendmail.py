"""The sendmail interface end to end: a subprocess queues mail that a real server delivers."""

from __future__ import annotations

import email
import getpass
import os
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Callable
from email import policy
from pathlib import Path

from support.cli import queue_list, run
from support.dns import dns_server
from support.server import SRC, Server, env, wait_for

UID = os.getuid()
LOGIN = getpass.getuser()


def _sendmail(server: Server, *words: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return run(server, "sendmail", *words, stdin=stdin)


def _message(path: Path) -> email.message.EmailMessage:
    parsed = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def test_sendmail_t_with_bcc(server: Server) -> None:
    result = _sendmail(
        server,
        "-t", "-oi",
        stdin=(
            "To: bob@localhost, Carol <carol>\n"
            "Bcc: secret@localhost,\n  hidden@localhost\n"
            "Subject: from cron\n\n"
            "Output of the job.\n.\nThe dot above stays: -oi.\n"
        ),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    for user in ("bob", "carol", "secret", "hidden"):
        (path,) = server.wait_delivered(user)
        data = path.read_bytes()
        head = data.split(b"\n\n", 1)[0]
        assert b"Bcc" not in head
        assert (b"secret" in head, b"hidden" in head) == (user == "secret", user == "hidden")
        message = _message(path)
        assert message["Return-Path"] == f"<{LOGIN}@mx.test>"
        assert message["From"] == f"{LOGIN}@mx.test"  # added: the message had none
        assert message["Subject"] == "from cron"
        assert message.get_content() == "Output of the job.\n.\nThe dot above stays: -oi.\n"
        # Local submission: no client address; the Received line names the user.
        received = " ".join(message["Received"].split())
        assert received.startswith(f"by mx.test (Posthorn, from userid {UID}) id ")


def test_lone_dot_ends_the_message_without_i(server: Server) -> None:
    result = _sendmail(
        server, "-f", "alice@example.org", "-F", "Alice", "bob",
        stdin="Subject: dots\n\nfirst\n.\nnot sent\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (path,) = server.wait_delivered("bob")
    message = _message(path)
    assert message.get_content() == "first\n"
    assert message["From"] == "Alice <alice@example.org>"
    assert message["Delivered-To"] == "bob@mx.test"  # unqualified: the host's name


def test_the_sendmail_program(server: Server) -> None:
    # What the installed `sendmail` console script runs, under its own name, with
    # neither --config nor --data-dir: those come from the environment.
    scripts = tomllib.loads((SRC.parent / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["sendmail"] == "posthorn.cli.sendmail_cmd:main"
    code = "import sys; from posthorn.cli.sendmail_cmd import main; sys.argv[0] = 'sendmail'; "
    code += "sys.exit(main())"
    environment = env() | {
        "POSTHORN_CONFIG": str(server.config_path),
        "POSTHORN_DATA_DIR": str(server.data_dir),
    }
    result = subprocess.run(
        [sys.executable, "-c", code, "-i", "-f", "git@example.org", "bob@localhost"],
        input=b"Subject: [PATCH] fix\n\npatch\n",
        capture_output=True,
        env=environment,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    (path,) = server.wait_delivered("bob")
    assert _message(path)["Return-Path"] == "<git@example.org>"
    assert scripts["mailq"] == "posthorn.cli.sendmail_cmd:mailq"
    code = "import sys; from posthorn.cli.sendmail_cmd import mailq; sys.exit(mailq())"
    wait_for(lambda: run(server, "queue", "list").stdout == "Mail queue is empty\n")
    listing = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=60
    )
    assert (listing.returncode, listing.stdout) == (0, "Mail queue is empty\n")


def test_bs_speaks_smtp_on_stdin_and_stdout(make_server: Callable[..., Server]) -> None:
    with dns_server() as dns:
        # elsewhere.test is remote: its DNS fails on loopback, so the copy for it waits.
        dns.resolver.servfail.add("elsewhere.test")
        server = make_server(f'[dns]\nnameservers = ["{dns.address}"]\n')
        _bs_with_swaks(server)


def _bs_with_swaks(server: Server) -> None:
    command = shlex.join(
        [
            sys.executable, "-m", "posthorn", "sendmail", "-bs",
            "--config", str(server.config_path), "--data-dir", str(server.data_dir),
        ]
    )  # fmt: skip
    result = subprocess.run(
        [
            "swaks", "--pipe", command, "--from", "alice@example.org",
            "--to", "bob@localhost,carol@elsewhere.test", "--header", "Subject: via -bs",
            "--helo", "cron.test", "--pipeline",
        ],
        capture_output=True, text=True, env=env(), timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "<-  220 mx.test ESMTP Posthorn" in result.stdout
    assert "<-  250-mx.test Hello cron.test, pleased to meet you" in result.stdout
    assert "<-  250 2.1.5 Ok" in result.stdout  # a local user may send anywhere
    assert "<-  250 2.0.0 Ok: queued as" in result.stdout
    (path,) = server.wait_delivered("bob")
    message = _message(path)
    assert message["Subject"] == "via -bs"
    received = " ".join(message["Received"].split())
    assert received.startswith(f"by mx.test (Posthorn, from userid {UID}) with ESMTP id ")


def test_bs_reads_a_pipelined_script(server: Server) -> None:
    script = (
        "EHLO x\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<nobody@x.test\r\nRCPT TO:<bob@localhost>\r\n"
        "DATA\r\nSubject: piped\r\n\r\nhi\r\n.\r\nQUIT\r\n"
    )
    result = _sendmail(server, "-bs", stdin=script)
    assert result.returncode == 0, result.stderr
    codes = [line[:3] for line in result.stdout.splitlines() if line[3:4] == " "]
    assert codes == ["220", "250", "250", "501", "250", "354", "250", "221"]
    server.wait_delivered("bob")


def test_bp_lists_and_q_runs_the_queue(make_server: Callable[..., Server]) -> None:
    with dns_server() as dns:
        dns.resolver.servfail.add("deferred.test")
        server = make_server(f'[dns]\nnameservers = ["{dns.address}"]\n')
        assert _sendmail(server, "bob@deferred.test", stdin="Subject: q\n\nx\n").returncode == 0

        def attempts() -> int:
            queued = queue_list(server)
            return int(queued[0]["recipients"][0]["attempts"]) if queued else 0

        wait_for(lambda: attempts() == 1, what="the first attempt")
        listing = _sendmail(server, "-bp", stdin="")
        assert listing.returncode == 0
        assert f"<{LOGIN}@mx.test>" in listing.stdout
        assert "<bob@deferred.test> pending, 1 attempt, next attempt in 29m" in listing.stdout
        # -q: due now, and the running server is woken to try again at once.
        flushed = _sendmail(server, "-q", stdin="")
        assert flushed.returncode == 0, flushed.stderr
        wait_for(lambda: attempts() == 2, timeout=10, what="a second attempt after -q")


def test_mail_queued_without_a_server_is_delivered_when_it_starts(tmp_path: Path) -> None:
    server = Server(tmp_path / "mx")
    server.root.mkdir(parents=True)
    server.config_path.write_text('[server]\nhostname = "mx.test"\n')
    result = _sendmail(server, "-v", "bob@localhost", stdin="Subject: early\n\nx\n")
    assert result.returncode == 0, result.stderr
    assert "queued as" in result.stderr
    assert "no server is running" in result.stderr
    server.start()
    try:
        server.wait_delivered("bob")
    finally:
        server.stop()


def test_usage_errors(server: Server) -> None:
    no_rcpt = _sendmail(server, stdin="Subject: x\n\nx\n")
    assert no_rcpt.returncode == 64
    assert "no recipient addresses found" in no_rcpt.stderr
    daemon = _sendmail(server, "-bd", stdin="")
    assert daemon.returncode == 64
    assert "run `posthorn serve`" in daemon.stderr
    helped = _sendmail(server, "--help", stdin="")
    assert (helped.returncode, helped.stdout.startswith("usage: sendmail")) == (0, True)


def test_bs_idle_timeout(make_server: Callable[..., Server]) -> None:
    server = make_server("[smtp]\nidle_timeout = 0.5\n")
    cmd = [
        sys.executable, "-m", "posthorn", "sendmail", "-bs",
        "--config", str(server.config_path), "--data-dir", str(server.data_dir),
    ]  # fmt: skip
    with subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env()
    ) as proc:  # stdin stays open and silent after EHLO
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(b"EHLO x\r\n")
        proc.stdin.flush()
        out = proc.stdout.read()  # returns at the end: the session timed out and closed
        proc.stdin.close()
        assert proc.wait(10) == 0
    assert out.endswith(b"421 4.4.2 mx.test Error: timeout exceeded\r\n")


def test_oversized_input_is_refused(make_server: Callable[..., Server]) -> None:
    server = make_server("[smtp]\nmax_message_size = 1000\n")
    result = _sendmail(server, "bob", stdin="Subject: big\n\n" + "x" * 2000 + "\n")
    assert result.returncode == 65
    assert "message larger than 1000 octets" in result.stderr
    assert run(server, "queue", "list").stdout == "Mail queue is empty\n"


def test_bs_with_input_from_a_regular_file(server: Server, tmp_path: Path) -> None:
    # A regular file cannot be polled by the event loop; the driver reads it directly.
    script = tmp_path / "session.smtp"
    script.write_bytes(
        b"HELO x\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\n"
        b"Subject: from a file\r\n\r\nhi\r\n.\r\nQUIT\r\n"
    )
    cmd = [
        sys.executable, "-m", "posthorn", "sendmail", "-bs",
        "--config", str(server.config_path), "--data-dir", str(server.data_dir),
    ]  # fmt: skip
    with script.open("rb") as stdin:
        result = subprocess.run(cmd, stdin=stdin, capture_output=True, env=env(), timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(b"221 2.0.0 Bye\r\n")
    (path,) = server.wait_delivered("bob")
    assert _message(path)["Subject"] == "from a file"
