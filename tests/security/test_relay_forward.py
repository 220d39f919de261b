"""Relay control against recipients that an alias or forward file sends off-site, from a
client that is neither trusted nor authenticated (`trusted_networks = []`): the admin's
aliases forward off-site; a user's forward file does so only with
`aliases.forward_offsite`; the old routing tricks through a local alias stay refused."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from support.mail import parse
from support.server import Server, wait_for, wait_log

MESSAGE = b"Subject: %s\r\n\r\nhello\r\n"
SENDER = "mallory@example.org"


@pytest.fixture
def remote(make_server: Callable[..., Server]) -> Server:
    """The off-site destination: another Posthorn that is final for remote.test."""
    return make_server('[local]\ndomains = ["remote.test"]\n', name="remote")


@pytest.fixture
def untrusted_mx(
    make_server: Callable[..., Server], remote: Server, tmp_path: Path
) -> Callable[[bool], Server]:
    """A Posthorn for mx.test that trusts no network; remote.test is routed to `remote`."""
    aliases = tmp_path / "aliases"
    aliases.write_text("outside: friend@remote.test\n")

    def make(forward_offsite: bool) -> Server:
        return make_server(
            '[server]\nhostname = "mx.test"\n'
            '[local]\ndomains = ["mx.test"]\n'
            f'[aliases]\nfile = "{aliases}"\nforward_offsite = {str(forward_offsite).lower()}\n'
            "[relay]\ntrusted_networks = []\n"
            "[limits]\nmax_errors = 100\ntarpit_delay = 0\n"
            '[mailauth]\nspf = "none"\ndkim = "none"\ndmarc = "none"\n'
            f'[routes]\n"remote.test" = "smtp:[127.0.0.1]:{remote.port}"\n',
            name="mx",
        )

    return make


def forward_file(server: Server, user: str, text: str) -> None:
    path = server.data_dir / "mail" / user / "forward"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)


def send(server: Server, rcpt: str, subject: str) -> None:
    with server.smtp() as client:
        client.ehlo()
        client.mail(SENDER)
        # The client is untrusted: a plain remote recipient is refused...
        code, text = client.rcpt("friend@remote.test")
        assert (code, text[:5]) == (554, b"5.7.1")
        # ...while a local one is accepted, whatever expansion later makes of it.
        assert client.rcpt(rcpt)[0] == 250
        code, _ = client.data(MESSAGE % subject.encode())
        assert code == 250


def queue_empty(server: Server) -> bool:
    result = server.cli("queue", "list", "--json")
    return result.returncode == 0 and json.loads(result.stdout) == []


@pytest.mark.parametrize("forward_offsite", [True, False])
def test_admin_alias_forwards_off_site_for_untrusted_client(
    untrusted_mx: Callable[[bool], Server], remote: Server, forward_offsite: bool
) -> None:
    mx = untrusted_mx(forward_offsite)  # the admin's aliases are not forward files
    send(mx, "outside@mx.test", "alias")
    # Queued at intake for the remote recipient, then relayed to it.
    wait_log(mx, r"to=<friend@remote\.test>.*status=sent")
    (path,) = remote.wait_delivered("friend")
    assert parse(path).get_all("Delivered-To") == ["friend@remote.test", "outside@mx.test"]


def test_forward_file_goes_off_site_when_allowed(
    untrusted_mx: Callable[[bool], Server], remote: Server
) -> None:
    mx = untrusted_mx(True)
    forward_file(mx, "alice", "friend@remote.test\n")
    send(mx, "alice@mx.test", "forward on")
    (path,) = remote.wait_delivered("friend")
    assert parse(path).get_all("Delivered-To") == ["friend@remote.test", "alice@mx.test"]
    wait_for(lambda: queue_empty(mx), what="mx queue to empty")
    assert mx.delivered("alice") == []


def test_forward_file_stays_local_when_off_site_is_forbidden(
    untrusted_mx: Callable[[bool], Server], remote: Server
) -> None:
    mx = untrusted_mx(False)
    forward_file(mx, "alice", "friend@remote.test\n")
    send(mx, "alice@mx.test", "forward off")
    (path,) = mx.wait_delivered("alice")
    assert parse(path)["Subject"] == "forward off"
    assert parse(path).get_all("Delivered-To") == ["alice@mx.test"]
    assert re.search(
        r"forward: off-site target <friend@remote\.test> not followed "
        r"\(aliases\.forward_offsite = false\); kept in the mailbox of <alice@mx\.test>",
        mx.log(),
    )
    # Expansion happens at intake: nothing for remote.test was ever queued.
    wait_for(lambda: queue_empty(mx), what="mx queue to empty")
    assert "to=<friend@remote.test>" not in mx.log()
    assert remote.delivered("friend") == []


# Routing tricks that hide an off-site destination behind a local alias name.
TRICKS = [
    pytest.param("outside%remote.test@mx.test", id="percent-hack"),
    pytest.param("outside%remote.test%mx.test@mx.test", id="percent-nested"),
    pytest.param('"outside@remote.test"@mx.test', id="quoted-at"),
    pytest.param('"outside%remote.test"@mx.test', id="quoted-percent"),
    pytest.param("@mx.test:outside@remote.test", id="source-route"),
    pytest.param("remote.test!outside@mx.test", id="bang-path"),
]


def test_tricks_through_a_local_alias_are_refused(
    untrusted_mx: Callable[[bool], Server],
) -> None:
    mx = untrusted_mx(True)
    with mx.smtp() as client:
        client.ehlo()
        client.mail(SENDER)
        for param in TRICKS:
            (rcpt,) = param.values
            client.putcmd("RCPT", f"TO:<{rcpt}>")
            code, text = client.getreply()
            assert (code, text[:5]) == (554, b"5.7.1"), f"{rcpt}: {code} {text!r}"
        # The alias itself is still reachable, and only it is queued.
        assert client.rcpt("outside@mx.test")[0] == 250
        assert client.data(MESSAGE % b"tricks")[0] == 250
    assert mx.log().count("relay denied for") == len(TRICKS)
    lines = wait_log(mx, r"to=<friend@remote\.test>.*status=sent")
    assert len(lines) == 1
