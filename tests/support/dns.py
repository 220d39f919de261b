"""A real DNS server on loopback for tests (dnslib), serving zones the test writes.

Zone text is ordinary master-file syntax (`example.test. 300 IN MX 10 mx1.example.test.`).
Names listed in `servfail` answer SERVFAIL, names in `timeout` are never answered (the
resolver times out), names in `junk` get a reply of garbage bytes. Every query is recorded
in `queries` as (name, type) so tests can assert what was (not) asked. Listens on UDP and
TCP on the same free port.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

from dnslib import QTYPE, RCODE, RR, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer


def _free_port() -> int:
    """A port free on both UDP and TCP."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket() as tcp, contextlib.suppress(OSError):
                tcp.bind(("127.0.0.1", port))
                return port


@dataclass
class ZoneResolver(BaseResolver):  # type: ignore[misc]
    records: list[RR] = field(default_factory=list)
    servfail: set[str] = field(default_factory=set)
    timeout: set[str] = field(default_factory=set)
    junk: set[str] = field(default_factory=set)
    queries: list[tuple[str, str]] = field(default_factory=list)

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord | None:
        qname = str(request.q.qname).lower()
        qtype = QTYPE[request.q.qtype]
        self.queries.append((qname.rstrip("."), qtype))
        reply = request.reply()
        bare = qname.rstrip(".")
        if bare in self.timeout:
            return None
        if bare in self.servfail:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        if bare in self.junk:
            return _Junk()
        names = {str(rr.rname).lower() for rr in self.records}
        # Follow CNAMEs inside our own data, as a recursive server would.
        seen = 0
        while seen < 10:
            seen += 1
            answers = [rr for rr in self.records if str(rr.rname).lower() == qname]
            cname = [rr for rr in answers if rr.rtype == QTYPE.CNAME]
            if cname and request.q.qtype != QTYPE.CNAME:
                reply.add_answer(cname[0])
                qname = str(cname[0].rdata).lower()
                continue
            for rr in answers:
                if rr.rtype == request.q.qtype or request.q.qtype == QTYPE.ANY:
                    reply.add_answer(rr)
            break
        if not reply.rr and qname not in names:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


class _Junk:
    """Stands in for a reply; packs to bytes that are not a DNS message."""

    def pack(self) -> bytes:
        return b"\x00\x01garbage that is not DNS"


class _Handler(DNSHandler):  # type: ignore[misc]
    def get_reply(self, data: bytes) -> bytes | None:
        request = DNSRecord.parse(data)
        reply = self.server.resolver.resolve(request, self)
        if reply is None:
            return None
        packed: bytes = reply.pack()
        return packed

    def handle(self) -> None:
        # dnslib fails to send None (our "timeout" names) with a TypeError: that silence
        # is exactly the point, on both transports.
        with contextlib.suppress(TypeError, AttributeError):
            super().handle()


class DnsServer:
    """`DnsServer(zone_text).start()`; `.port`, `.add(text)`, `.stop()`."""

    def __init__(self, zone: str = "") -> None:
        self.port = _free_port()
        self.resolver = ZoneResolver()
        self.add(zone)
        logger = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
        self._servers = [
            DNSServer(
                self.resolver, "127.0.0.1", self.port, tcp=tcp, logger=logger, handler=_Handler
            )
            for tcp in (False, True)
        ]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def queries(self) -> list[tuple[str, str]]:
        return self.resolver.queries

    def add(self, zone: str) -> None:
        if zone.strip():
            self.resolver.records.extend(RR.fromZone(zone))

    def replace(self, zone: str) -> None:
        self.resolver.records[:] = RR.fromZone(zone) if zone.strip() else []

    def start(self) -> DnsServer:
        for server in self._servers:
            server.start_thread()
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
            server.server.server_close()


@contextlib.contextmanager
def dns_server(zone: str = "") -> Iterator[DnsServer]:
    server = DnsServer(zone).start()
    try:
        yield server
    finally:
        server.stop()
