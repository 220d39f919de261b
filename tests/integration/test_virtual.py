"""Virtual domains, per-domain users, catch-all and address extensions, end to end."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from support.mail import parse
from support.server import Server

MESSAGE = b"Subject: v\r\n\r\nvirtual\r\n"


@pytest.fixture
def mx(tmp_path: Path, make_server: Callable[..., Server]) -> Server:
    aliases = tmp_path / "aliases"
    aliases.write_text("info@example.net: ann, alice@mx.test\nsales: alice\n")
    return make_server(
        f"""
        [local]
        domains = ["mx.test"]
        users = ["alice", "ann@example.net", "bob@example.net", "carol@example.com"]
        accept_any_local_user = false
        virtual_domains = ["example.net", "Example.COM"]
        catch_all = {{ "example.com" = "carol" }}
        [aliases]
        file = "{aliases}"
        """
    )


def rcpt(server: Server, address: str) -> int:
    with server.smtp() as client:
        client.ehlo()
        client.mail("x@example.org")
        code, _ = client.rcpt(address)
        return code


def test_users_belong_to_their_own_domain(mx: Server) -> None:
    assert rcpt(mx, "ann@example.net") == 250
    assert rcpt(mx, "alice@mx.test") == 250
    assert rcpt(mx, "alice@example.net") == 550  # alice is a user of mx.test only
    assert rcpt(mx, "ann@mx.test") == 550
    assert rcpt(mx, "sales@example.net") == 550  # plain aliases are for shared domains
    assert rcpt(mx, "postmaster@example.net") == 250  # RFC 5321 section 4.5.1


def test_virtual_user_extension_and_domain_alias(mx: Server) -> None:
    with mx.smtp() as client:
        client.sendmail("x@example.org", ["bob+news@example.net", "info@example.net"], MESSAGE)
    (bob,) = mx.wait_delivered("bob@example.net")
    assert parse(bob)["Delivered-To"] == "bob+news@example.net"
    (ann,) = mx.wait_delivered("ann@example.net")
    assert parse(ann).get_all("Delivered-To") == ["ann@example.net", "info@example.net"]
    mx.wait_delivered("alice")


def test_catch_all_takes_unknown_names(mx: Server) -> None:
    with mx.smtp() as client:
        client.sendmail("x@example.org", ["whoever@EXAMPLE.com", "carol@example.com"], MESSAGE)
    found = mx.wait_delivered("carol@example.com", 2)
    assert sorted(parse(p)["Delivered-To"] for p in found) == [
        "carol@example.com",
        "whoever@EXAMPLE.com",
    ]


@pytest.mark.parametrize(
    ("delimiter", "address"), [("+", "alice+tag@mx.test"), ("-", "alice-tag@mx.test")]
)
def test_extension_delimiter_is_configurable(
    make_server: Callable[..., Server], delimiter: str, address: str
) -> None:
    server = make_server(
        f'[local]\ndomains = ["mx.test"]\nusers = ["alice"]\naccept_any_local_user = false\n'
        f'extension_delimiter = "{delimiter}"\n'
    )
    with server.smtp() as client:
        client.sendmail("x@example.org", [address], MESSAGE)
    (path,) = server.wait_delivered("alice")
    assert parse(path)["Delivered-To"] == address
