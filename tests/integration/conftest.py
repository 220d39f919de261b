"""Fixtures of the relay tests (test_remote_*.py, test_cli_explain.py): the loopback DNS
server serving the test module's `ZONE` (with SERVFAIL for the names in its optional
`SERVFAIL`), one port free on every address in its `MX_HOSTS` (MX hosts all listen on
"port 25"), smtp-sink receivers there, and the sending Posthorn (`support/relay.py`).
A module that needs something else defines its own fixture of the same name."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from support.dns import DnsServer, dns_server
from support.relay import Sink, sender_config, shared_port
from support.server import Server


@pytest.fixture
def dns(request: pytest.FixtureRequest) -> Iterator[DnsServer]:
    with dns_server(request.module.ZONE) as server:
        server.resolver.servfail.update(getattr(request.module, "SERVFAIL", ()))
        yield server


@pytest.fixture
def port(request: pytest.FixtureRequest) -> int:
    return shared_port(*request.module.MX_HOSTS)


@pytest.fixture
def sinks(port: int) -> Iterator[Callable[..., Sink]]:
    """Start smtp-sink on a host address: `sinks(host, *options, name=...)`."""
    started: list[Sink] = []

    def start(host: str, *options: str, name: str = "sink.test") -> Sink:
        sink = Sink(host, port, tuple(options), name).start()
        started.append(sink)
        return sink

    yield start
    for sink in started:
        sink.cleanup()


@pytest.fixture
def sender(make_server: Callable[..., Server], dns: DnsServer, port: int) -> Callable[..., Server]:
    """Start the sending Posthorn: `sender(extra, local=..., queue=...)`, see
    `support.relay.sender_config`."""

    def start(extra: str = "", *, local: str = "", queue: str = "") -> Server:
        text = sender_config(dns.address, port, extra, local=local, queue=queue)
        return make_server(text, name="sender")

    return start
