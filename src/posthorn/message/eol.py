"""Line endings: the one place that converts between the queue's CRLF and mailboxes' LF.

Owns: `to_lf` (mailbox writers) and `to_crlf` (content from local programs and files).
The queue always holds CRLF, as SMTP carries it (RFC 5321 section 2.3.8).
"""

from __future__ import annotations

__all__ = ["to_crlf", "to_lf"]


def to_lf(data: bytes) -> bytes:
    """CRLF -> LF, for Maildir and mbox files (the Unix convention readers expect)."""
    return data.replace(b"\r\n", b"\n")


def to_crlf(data: bytes) -> bytes:
    """Any of CRLF, bare LF or bare CR -> CRLF."""
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
