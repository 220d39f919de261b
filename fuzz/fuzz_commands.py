"""atheris harness: command lines into the grammar, addresses, SASL and relay resolution."""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from posthorn.address import Address, AddressError
    from posthorn.receive.auth import Challenge, SaslExchange
    from posthorn.routing.relay import destination
    from posthorn.smtp.commands import ParseContext, parse_command
    from posthorn.smtp.events import Rcpt
    from support.coredriver import CAPS


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    esmtp, utf8 = fdp.ConsumeBool(), fdp.ConsumeBool()
    line = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 1024)).replace(b"\n", b"")
    command = parse_command(line, ParseContext(CAPS, esmtp, utf8))
    if isinstance(command, Rcpt):
        found = destination(command.recipient, lambda a: a.domain_key == "mx.test")
        assert destination(found, lambda a: a.domain_key == "mx.test") == found
    text = fdp.ConsumeUnicodeNoSurrogates(256)
    with contextlib.suppress(AddressError):
        Address.parse(text, utf8=True)
    exchange = SaslExchange("PLAIN" if fdp.ConsumeBool() else "LOGIN")
    step = exchange.start(text or None)
    while isinstance(step, Challenge) and fdp.remaining_bytes():
        step = exchange.respond(fdp.ConsumeUnicodeNoSurrogates(64))


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
