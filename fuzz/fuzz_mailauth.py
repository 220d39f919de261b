"""atheris harness: hostile headers into the DMARC and Authentication-Results code."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from posthorn.mailauth.dmarc import from_domain, parse_record
    from posthorn.mailauth.results import strip_forged


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    record = fdp.ConsumeUnicodeNoSurrogates(256)
    parse_record(record)
    content = fdp.ConsumeBytes(fdp.remaining_bytes())
    from_domain(content)
    stripped = strip_forged(content, "mx.test")
    assert len(stripped) <= len(content)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
