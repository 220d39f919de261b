"""atheris harness: any byte stream, cut anywhere, into the sans-I/O server core."""

from __future__ import annotations

import itertools
import sys

import atheris

with atheris.instrument_imports():
    from support.coredriver import drive


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    cuts = sorted(fdp.ConsumeIntInRange(0, 4096) for _ in range(fdp.ConsumeIntInRange(0, 8)))
    refusals = [fdp.ConsumeBool() for _ in range(fdp.ConsumeIntInRange(0, 16))]
    stream = fdp.ConsumeBytes(fdp.remaining_bytes())
    points = [0, *(c for c in cuts if c < len(stream)), len(stream)]
    chunks = [stream[a:b] for a, b in itertools.pairwise(points)]
    drive(chunks, refusals)  # raises AssertionError when an invariant breaks


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
