"""Mailbox grammar (RFC 5321 section 4.1.2, RFC 6531): parse, quote, compare."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posthorn.address import Address, AddressError, is_domain, normalise_domain


@pytest.mark.parametrize(
    ("text", "local", "domain"),
    [
        ("bob@example.org", "bob", "example.org"),
        ("first.last+tag@sub.example.org", "first.last+tag", "sub.example.org"),
        ('"john doe"@example.org', "john doe", "example.org"),
        ('"a\\"b"@example.org', 'a"b', "example.org"),
        ('"user@other"@example.org', "user@other", "example.org"),
        ("postmaster@[192.0.2.1]", "postmaster", "[192.0.2.1]"),
        ("x@[IPv6:2001:db8::1]", "x", "[IPv6:2001:db8::1]"),
        ("!#$%&'*+-/=?^_`{|}~@example.org", "!#$%&'*+-/=?^_`{|}~", "example.org"),
    ],
)
def test_valid_mailboxes(text: str, local: str, domain: str) -> None:
    address = Address.parse(text)
    assert (address.local, address.domain) == (local, domain)


@pytest.mark.parametrize(
    "text",
    [
        "no-at-sign",
        "@example.org",
        "bob@",
        "bob@example.org.",  # trailing dot: not a Domain in RFC 5321
        "bob@-example.org",
        "bob@exa_mple.org",
        "bo b@example.org",
        "a..b@example.org",
        ".a@example.org",
        "a.@example.org",
        '"unterminated@example.org',
        "bob@[300.1.1.1]",
        "bob@[IPv6:zzzz]",
        "bob@[not a literal]",
        "jörg@example.org",  # UTF-8 needs SMTPUTF8
        "bob@bücher.example",
    ],
)
def test_invalid_mailboxes(text: str) -> None:
    with pytest.raises(AddressError):
        Address.parse(text)


def test_utf8_addresses_with_smtputf8() -> None:
    address = Address.parse("jörg@bücher.example", utf8=True)
    assert address.needs_smtputf8
    assert address.domain_key == "xn--bcher-kva.example"
    assert str(address) == "jörg@bücher.example"


def test_quoting_on_output() -> None:
    assert str(Address("john doe", "example.org")) == '"john doe"@example.org'
    assert str(Address('a"b', "example.org")) == '"a\\"b"@example.org'
    assert str(Address("plain", "example.org")) == "plain@example.org"


def test_keys_fold_domain_case_but_not_local_part() -> None:
    a = Address.parse("Bob@Example.ORG")
    assert a.domain_key == "example.org"
    assert a.key() == "Bob@example.org"


def test_domain_helpers() -> None:
    assert is_domain("example.org")
    assert not is_domain("example.org.")
    assert not is_domain("")
    assert normalise_domain("Example.ORG.") == "example.org"


local_parts = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=30
)


@given(local_parts)
def test_quote_parse_round_trip(local: str) -> None:
    """Whatever the local part, writing it and reading it back gives it back."""
    address = Address(local, "example.org")
    assert Address.parse(str(address)) == address
