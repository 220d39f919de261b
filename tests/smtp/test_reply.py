"""Reply values and their wire form (RFC 5321 section 4.2, RFC 3463)."""

from __future__ import annotations

import pytest

from posthorn.smtp.reply import Reply, ReplyError, parse_reply_line, split_esc


def test_single_line() -> None:
    assert Reply(250, "2.1.0", ("Ok",)).to_bytes() == b"250 2.1.0 Ok\r\n"


def test_multi_line_repeats_code_and_enhanced_code() -> None:
    reply = Reply(214, "2.0.0", ("one", "two", "three"))
    assert reply.to_bytes() == b"214-2.0.0 one\r\n214-2.0.0 two\r\n214 2.0.0 three\r\n"


def test_no_enhanced_code() -> None:
    assert Reply(220, None, ("mx.test ESMTP",)).to_bytes() == b"220 mx.test ESMTP\r\n"


def test_enhanced_code_must_match_class() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        Reply(250, "5.1.1", ("x",))


def test_classes() -> None:
    assert Reply(354, None, ("go",)).is_positive
    assert Reply(451, "4.3.0", ("later",)).is_transient
    assert Reply(550, "5.1.1", ("no",)).is_permanent
    assert str(Reply(550, "5.1.1", ("no", "such"))) == "550 5.1.1 no such"


def test_parse_reply_lines() -> None:
    assert parse_reply_line(b"250-PIPELINING\r\n") == (250, False, "PIPELINING")
    assert parse_reply_line(b"250 OK\r\n") == (250, True, "OK")
    assert parse_reply_line(b"250") == (250, True, "")
    for junk in (b"hello", b"25 x", b"250xOK", b"999 x"):
        with pytest.raises(ReplyError):
            parse_reply_line(junk)


def test_split_esc() -> None:
    assert split_esc(550, "5.1.1 unknown") == ("5.1.1", "unknown")
    assert split_esc(550, "4.1.1 mismatched class") == (None, "4.1.1 mismatched class")
    assert split_esc(250, "mx.test Hello") == (None, "mx.test Hello")
