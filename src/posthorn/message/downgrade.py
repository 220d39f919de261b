"""Turning an 8-bit message into 7-bit MIME for a peer without 8BITMIME (RFC 6152 section 3).

Owns: deciding what a message needs from the next hop (`needs_8bit`, `needs_smtputf8`)
and the conversion itself: every leaf part whose body has 8-bit octets is re-encoded,
text as quoted-printable and anything else as base64, by the stdlib `email` package, so
that the decoded content of every part is unchanged. Headers are left exactly as they
were (a message whose headers need 8 bits needs SMTPUTF8, not a downgrade). This is the
only place where the relay path re-serialises a message. Does not own SMTP.

`to_7bit` raises nothing for odd input: a part it cannot re-encode is left as it is.
"""

from __future__ import annotations

import email.encoders
import email.policy
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesParser
from io import BytesIO

from posthorn.envelope import Envelope
from posthorn.message import headers

__all__ = ["has_8bit", "needs_smtputf8", "to_7bit"]

# Keep every header line as it came (`refold_source="none"`): trace fields and DKIM
# signatures must not be refolded on the way through.
_POLICY = email.policy.SMTP.clone(refold_source="none")
_EIGHT_BIT = bytes(range(128, 256))


def has_8bit(data: bytes) -> bool:
    """True when any octet has its high bit set."""
    return bool(data) and data.translate(None, _EIGHT_BIT) != data


def needs_smtputf8(envelope: Envelope, content: bytes) -> bool:
    """True when the message cannot travel without SMTPUTF8 (RFC 6531 section 3.2).

    A message received with SMTPUTF8 whose addresses and headers are all ASCII can
    (RFC 6531 section 3.4 leaves that to the client; we do).
    """
    if envelope.sender is not None and envelope.sender.needs_smtputf8:
        return True
    if any(r.address.needs_smtputf8 for r in envelope.recipients):
        return True
    return envelope.smtputf8 and has_8bit(headers.header_block(content))


def _reencode(part: Message) -> None:
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes) or not has_8bit(raw):
        return
    del part["Content-Transfer-Encoding"]
    if part.get_content_maintype() == "text":
        # Quoted-printable keeps text readable; its line breaks stand for CRLF.
        part.set_payload(raw.replace(b"\r\n", b"\n").decode("ascii", "surrogateescape"))
        email.encoders.encode_quopri(part)
    else:
        part.set_payload(raw.decode("ascii", "surrogateescape"))
        email.encoders.encode_base64(part)


def to_7bit(content: bytes) -> bytes:
    """The message with every 8-bit body part re-encoded; CRLF line endings."""
    message = BytesParser(policy=_POLICY).parsebytes(content)
    for part in message.walk():
        if not part.is_multipart() and part.get_content_maintype() != "message":
            _reencode(part)
    out = BytesIO()
    BytesGenerator(out, policy=_POLICY, mangle_from_=False).flatten(message)
    return out.getvalue()
