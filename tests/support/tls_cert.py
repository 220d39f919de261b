"""Throw-away certificates for tests, made in this process by Posthorn's own
`posthorn.certs` (the code behind `posthorn tls selfsigned`).

`self_signed(dir, name)` writes `cert.pem` and `key.pem` (mode 0600) for `name`,
`localhost`, 127.0.0.1 and ::1, valid from `start` to `end` days from now (by default
from an hour ago for a day), and returns their paths; a client that trusts
`cert.pem` as its CA verifies the server. Tests of the `posthorn tls selfsigned` command
itself use `support.tlsauth.make_pki`, which runs the command.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from posthorn.certs import write_certificate


def self_signed(
    directory: Path, name: str = "localhost", *, start: float = -1 / 24, end: float = 1.0
) -> tuple[Path, Path]:
    now = datetime.datetime.now(datetime.UTC)
    cert, key = directory / "cert.pem", directory / "key.pem"
    valid_from = now + datetime.timedelta(days=start)
    valid_until = now + datetime.timedelta(days=end)
    write_certificate(name, cert, key, valid_from, valid_until)
    return cert, key
