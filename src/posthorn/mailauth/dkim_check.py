"""DKIM verification (RFC 6376) of one inbound message, every signature in it.

Owns: running dkimpy over each DKIM-Signature field with its key looked up through the
resolver of `lookup.py`, and the per-signature `DkimResult` (pass, fail, neutral for a
signature that cannot be evaluated, temperror for DNS trouble). Blocking (DNS, RSA): call
it in a worker thread. Does not own what is done with the results.

Never raises for message content: malformed signatures are results, not exceptions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dkim
import dns.resolver

from posthorn.mailauth import lookup

__all__ = ["DkimResult", "verify_dkim"]

_MAX_SIGNATURES = 8  # more than this is abuse; the rest are not evaluated
_quiet = logging.getLogger("posthorn.dkim.lib")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


@dataclass(frozen=True, slots=True)
class DkimResult:
    result: str  # pass fail neutral temperror permerror (RFC 8601 section 2.7.1)
    domain: str  # d=
    selector: str  # s=
    b: str = ""  # the first characters of b=, to tell signatures apart (RFC 6008)
    reason: str = ""


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return "" if value is None else str(value)


def verify_dkim(resolver: dns.resolver.Resolver, message: bytes) -> list[DkimResult]:
    def dnsfunc(name: bytes | str, timeout: float = 5) -> bytes | None:
        records = lookup.txt_records(resolver, _text(name).rstrip("."))
        return records[0] if records else None

    try:
        signer = dkim.DKIM(message, logger=_quiet)
    except Exception as exc:  # see below: hostile input must not escape as an exception
        return [DkimResult("permerror", "", "", reason=str(exc))]
    count = sum(1 for name, _ in signer.headers if name.lower() == b"dkim-signature")
    results = []
    for idx in range(min(count, _MAX_SIGNATURES)):
        signer = dkim.DKIM(message, logger=_quiet)
        try:
            ok = signer.verify(idx=idx, dnsfunc=dnsfunc)
            result, reason = ("pass", "") if ok else ("fail", "signature did not verify")
        except (lookup.TempFail, dkim.DnsTimeoutError) as exc:
            result, reason = "temperror", str(exc)
        except dkim.KeyFormatError as exc:
            result, reason = "permerror", str(exc)  # no key, or an unusable one
        except dkim.ValidationError as exc:
            # RFC 8601 section 2.7.1: a body that does not match is "fail"; a signature
            # that cannot be evaluated is "neutral".
            result = "fail" if "body hash mismatch" in str(exc) else "neutral"
            reason = str(exc)
        except Exception as exc:
            # A third-party parser over hostile input: whatever it raises (DKIMException,
            # or a bug's IndexError) makes this signature unusable, not the session.
            result, reason = "neutral", f"{type(exc).__name__}: {exc}"
        fields = signer.signature_fields or {}
        results.append(
            DkimResult(
                result,
                _text(fields.get(b"d", signer.domain)).lower(),
                _text(fields.get(b"s", signer.selector)),
                _text(fields.get(b"b", b""))[:8],
                reason,
            )
        )
    return results
