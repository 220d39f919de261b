"""SMTP smuggling: only <CR><LF>.<CR><LF> ends DATA. Every other end-of-data look-alike
is refused, or (when normalising) kept as content, and nothing is smuggled into the queue.
Also NUL octets, in commands and in content."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from support.raw import Raw
from support.server import Server

SEQUENCES = [
    pytest.param(b"\n.\n", id="LF.LF"),
    pytest.param(b"\r.\r", id="CR.CR"),
    pytest.param(b"\n.\r\n", id="LF.CRLF"),
    pytest.param(b"\r\n.\n", id="CRLF.LF"),
    pytest.param(b"\r\n.\r", id="CRLF.CR"),
    pytest.param(b"\r.\r\n", id="CR.CRLF"),
    pytest.param(b"\n.\r", id="LF.CR"),
]

SMUGGLED = (
    b"MAIL FROM:<admin@example.org>\r\n"
    b"RCPT TO:<victim@mx.test>\r\n"
    b"DATA\r\n"
    b"From: admin@example.org\r\nSubject: smuggled\r\n\r\nsmuggled\r\n"
)


def _queue(server: Server) -> list[dict[str, object]]:
    result = server.cli("queue", "list", "--json")
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def _send(server: Server, sequence: bytes) -> tuple[bytes, bytes]:
    with Raw(server.port) as raw:
        assert raw.reply().startswith(b"220")
        assert raw.command(b"EHLO client.test").startswith(b"250")
        assert raw.command(b"MAIL FROM:<alice@example.org>").startswith(b"250")
        assert raw.command(b"RCPT TO:<bob@mx.test>").startswith(b"250")
        assert raw.command(b"DATA").startswith(b"354")
        raw.send(b"Subject: first\r\n\r\nfirst" + sequence + SMUGGLED + b"\r\n.\r\n")
        first = raw.reply()
        after = raw.command(b"QUIT")
    return first, after


@pytest.mark.parametrize("sequence", SEQUENCES)
def test_smuggling_sequence_is_refused(
    make_server: Callable[..., Server], sequence: bytes
) -> None:
    server = make_server("", "--hold")
    first, after = _send(server, sequence)
    assert first.startswith(b"550 5.6.0"), first
    assert after.startswith(b"221"), after  # exactly one reply: nothing else was run
    assert _queue(server) == []


@pytest.mark.parametrize("sequence", SEQUENCES)
def test_normalising_keeps_the_lookalike_as_content(
    make_server: Callable[..., Server], sequence: bytes
) -> None:
    server = make_server('[smtp]\nbare_line_endings = "normalise"\n', "--hold")
    first, after = _send(server, sequence)
    assert first.startswith(b"250 2.0.0 Ok: queued"), first
    assert after.startswith(b"221"), after
    (message,) = _queue(server)
    recipients = [r["address"] for r in message["recipients"]]  # type: ignore[attr-defined]
    assert recipients == ["bob@mx.test"]


def test_nul_in_content_and_command(make_server: Callable[..., Server]) -> None:
    server = make_server("", "--hold")
    with Raw(server.port) as raw:
        raw.reply()
        assert raw.command(b"EHLO client.test").startswith(b"250")
        assert raw.command(b"NOOP\0MAIL FROM:<a@example.org>").startswith(b"500 5.5.2")
        assert raw.command(b"MAIL FROM:<alice@example.org>").startswith(b"250")
        assert raw.command(b"RCPT TO:<bob@mx.test>").startswith(b"250")
        assert raw.command(b"DATA").startswith(b"354")
        raw.send(b"Subject: nul\r\n\r\nbefore\0after\r\n.\r\n")
        assert raw.reply().startswith(b"550 5.6.0")
        assert raw.command(b"NOOP").startswith(b"250")
    assert _queue(server) == []
