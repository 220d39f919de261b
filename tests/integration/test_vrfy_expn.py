"""VRFY and EXPN as the seed lecture shows them and RFC 5321 section 3.5 specifies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from support.server import Server
from support.transcript import play

ALIASES = """\
staff: alice, bob, friend@remote.test
moved: rs@elsewhere.test
local-only: alice
postmaster: rstevens
"""


def config(tmp_path: Path, verify: str = "") -> str:
    aliases = tmp_path / "aliases"
    aliases.write_text(ALIASES)
    return f"""
        [local]
        domains = ["mx.test"]
        users = ["rstevens", "alice", "bob", "jsmith", "hsmith"]
        accept_any_local_user = false
        [local.full_names]
        rstevens = "Richard Stevens"
        jsmith = "Joe Smith"
        hsmith = "Harry Smith"
        [aliases]
        file = "{aliases}"
        {verify}
        """


@pytest.fixture
def mx(tmp_path: Path, make_server: Callable[..., Server]) -> Server:
    server = make_server(config(tmp_path))
    forward = server.data_dir / "mail" / "rstevens" / "forward"
    forward.parent.mkdir(parents=True)
    forward.write_text("rstevens@sun.tuc.noao.edu\n")
    return server


def test_seed_transcript(mx: Server) -> None:
    play(
        mx,
        """
        S: 220 mx.test ESMTP Posthorn
        C: helo bsdi.tuc.noao.edu
        S: 250 mx.test Hello bsdi.tuc.noao.edu [127.0.0.1], pleased to meet you
        C: vrfy nosuchname
        S: 550 5.1.1 nosuchname... User unknown
        C: vrfy rstevens
        S: 250 2.1.5 Richard Stevens <rstevens@mx.test>
        C: expn rstevens
        S: 250 2.1.5 <rstevens@sun.tuc.noao.edu>
        C: quit
        S: 221 2.0.0 Bye
        """,
    )


def test_expn_lists_one_member_per_line_and_vrfy_does_not_expand(mx: Server) -> None:
    play(
        mx,
        """
        S: 220 mx.test ESMTP Posthorn
        C: EHLO client.test
        S: 250-mx.test Hello client.test [127.0.0.1], pleased to meet you
        S: 250-PIPELINING
        S: 250-SIZE 36700160
        S: 250-ETRN
        S: 250-ENHANCEDSTATUSCODES
        S: 250-8BITMIME
        S: 250-DSN
        S: 250-SMTPUTF8
        S: 250-CHUNKING
        S: 250 HELP
        C: EXPN staff
        S: 250-2.1.5 <alice@mx.test>
        S: 250-2.1.5 <bob@mx.test>
        S: 250 2.1.5 <friend@remote.test>
        C: VRFY staff
        S: 250 2.1.5 <staff@mx.test>
        C: VRFY <moved@mx.test>
        S: 251 2.1.5 User not local; will forward to <rs@elsewhere.test>
        C: VRFY postmaster
        S: 250 2.1.5 <postmaster@mx.test>
        C: EXPN postmaster
        S: 250 2.1.5 <rstevens@sun.tuc.noao.edu>
        C: VRFY smith
        S: 553-5.1.4 Ambiguous; possibilities are
        S: 553-5.1.4 Harry Smith <hsmith@mx.test>
        S: 553 5.1.4 Joe Smith <jsmith@mx.test>
        C: VRFY Joe Smith
        S: 250 2.1.5 Joe Smith <jsmith@mx.test>
        C: EXPN alice
        S: 550 5.1.0 alice... That is a user name, not a mailing list
        C: EXPN nobody-here
        S: 550 5.1.1 nobody-here... User unknown
        C: VRFY someone@remote.test
        S: 252 2.0.0 Cannot VRFY user, but will attempt delivery
        C: VRFY a@@b
        S: 501 5.1.3 Bad address syntax
        C: QUIT
        S: 221 2.0.0 Bye
        """,
    )


@pytest.mark.parametrize(
    "verify",
    [
        '[verify]\nvrfy = "off"\nexpn = "off"',
        "[relay]\ntrusted_networks = []",  # the default "trusted": this client is not
    ],
)
def test_disabled_or_untrusted_gets_252(
    tmp_path: Path, make_server: Callable[..., Server], verify: str
) -> None:
    server = make_server(config(tmp_path, verify))
    play(
        server,
        """
        S: 220 mx.test ESMTP Posthorn
        C: HELO client.test
        S: 250 mx.test Hello client.test [127.0.0.1], pleased to meet you
        C: VRFY nosuchname
        S: 252 2.0.0 Cannot VRFY user, but will attempt delivery
        C: VRFY alice
        S: 252 2.0.0 Cannot VRFY user, but will attempt delivery
        C: EXPN staff
        S: 252 2.0.0 Cannot EXPN, but will attempt delivery
        """,
    )


def test_on_for_everyone_tells_untrusted_clients_where_to_go(
    tmp_path: Path, make_server: Callable[..., Server]
) -> None:
    server = make_server(
        config(tmp_path, '[verify]\nvrfy = "on"\nexpn = "on"\n[relay]\ntrusted_networks = []')
    )
    play(
        server,
        """
        S: 220 mx.test ESMTP Posthorn
        C: HELO client.test
        S: 250 mx.test Hello client.test [127.0.0.1], pleased to meet you
        C: VRFY alice
        S: 250 2.1.5 <alice@mx.test>
        C: VRFY someone@remote.test
        S: 551 5.7.1 User not local; please try <someone@remote.test>
        C: EXPN local-only
        S: 250 2.1.5 <alice@mx.test>
        """,
    )


@pytest.mark.parametrize("forward_offsite", [True, False])
def test_expn_follows_the_forward_offsite_rule(
    tmp_path: Path, make_server: Callable[..., Server], forward_offsite: bool
) -> None:
    """EXPN walks the same expansion as intake: a forward file's off-site line that
    delivery would not follow is not listed; the user's own mailbox is instead."""
    server = make_server(config(tmp_path, f"forward_offsite = {str(forward_offsite).lower()}"))
    forward = server.data_dir / "mail" / "bob" / "forward"
    forward.parent.mkdir(parents=True)
    forward.write_text("friend@remote.test\n")
    with server.smtp() as client:
        client.ehlo()
        code, text = client.docmd("EXPN", "bob")
    assert code == 250, text
    if forward_offsite:
        assert text == b"2.1.5 <friend@remote.test>"
    else:
        assert b"remote.test" not in text
        assert b"<bob@mx.test>" in text
