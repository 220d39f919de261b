"""The transport table of [routes]: its grammar and lookups."""

from __future__ import annotations

import pytest

from posthorn.config import ConfigError, load_text, render
from posthorn.config.schema import Config
from posthorn.routing.nexthop import Nexthop, TransportTable, parse_nexthop


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("smtp:[127.0.0.1]:2526", Nexthop("127.0.0.1", 2526, mx=False)),
        ("smtp:[relay.example.org]", Nexthop("relay.example.org", None, mx=False)),
        ("smtp:Example.ORG:25", Nexthop("example.org", 25, mx=True)),
        ("smtp:example.org", Nexthop("example.org", None, mx=True)),
        ("smtp:[::1]:2525", Nexthop("::1", 2525, mx=False)),
        ("smtp:192.0.2.7", Nexthop("192.0.2.7", None, mx=False)),
    ],
)
def test_parse(text: str, expected: Nexthop) -> None:
    assert parse_nexthop(text) == expected


@pytest.mark.parametrize(
    "text", ["lmtp:[x]:1", "smtp:[x", "smtp:[x]:0", "smtp:[x]:99999", "smtp:bad host", "x"]
)
def test_bad_targets(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_nexthop(text)


def test_lookup_exact_then_star_then_mx() -> None:
    table = TransportTable({"Example.test": "smtp:[127.0.0.1]:2526", "*": "smtp:[hub.test]"})
    assert table.lookup("example.test.") == Nexthop("127.0.0.1", 2526, False)
    assert table.lookup("other.test") == Nexthop("hub.test", None, False)
    assert TransportTable({}).lookup("Other.Test") == Nexthop("other.test")
    assert TransportTable({}).lookup("[192.0.2.1]") == Nexthop("192.0.2.1", None, False)
    assert TransportTable({}).lookup("[ipv6:::1]") == Nexthop("::1", None, False)


def test_routes_in_config_are_checked_and_rendered() -> None:
    config = load_text(Config, '[routes]\n"example.test" = "smtp:[127.0.0.1]:2526"\n')
    assert config.routes == {"example.test": "smtp:[127.0.0.1]:2526"}
    text = render(config)
    assert "[routes]\n# Transport table" in text
    assert '"example.test" = "smtp:[127.0.0.1]:2526"' in text
    assert load_text(Config, text) == config
    with pytest.raises(ConfigError, match=r"routes\.bad\.test"):
        load_text(Config, '[routes]\n"bad.test" = "smtp:[nope"\n')
    with pytest.raises(ConfigError, match=r"smtp_client\.tls"):
        load_text(Config, '[smtp_client]\ntls = "sometimes"\n')
    defaults = render(Config())
    assert "[smtp_client]" in defaults
    assert "data_end_timeout = 600.0" in defaults
    assert load_text(Config, defaults) == Config()
