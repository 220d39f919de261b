"""TLS for the SMTP service: the server's SSL context and how a session describes TLS.

Owns: building the `ssl.SSLContext` from `[tls]` (certificate and key, TLS 1.2 or later,
no compression, no renegotiation, server cipher preference) and the one-line description
of an established TLS session that goes into logs and the Received header. Does not own
when TLS starts (STARTTLS: the core, `conversation.py` and `channel.py`; implicit TLS:
`listener.py`) or certificate creation (`posthorn.certs`).

Raises `TlsConfigError` (a `ValueError`) at start-up when the certificate or key cannot
be loaded.
"""

from __future__ import annotations

import ssl

from posthorn.config import TlsConfig

__all__ = ["TlsConfigError", "describe", "server_context"]


class TlsConfigError(ValueError):
    """The configured certificate or key cannot be used."""


_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


def server_context(config: TlsConfig) -> ssl.SSLContext | None:
    """The server context, or None when no certificate is configured."""
    if not config.cert:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # RFC 8996 retires TLS 1.0 and 1.1; RFC 8314 section 4.1 asks for TLS 1.2 or later.
    context.minimum_version = _VERSIONS[config.min_version]
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.options |= ssl.OP_NO_RENEGOTIATION
    try:
        context.load_cert_chain(config.cert, config.key)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"tls: cannot load {config.cert} / {config.key}: {exc}") from exc
    return context


def describe(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> str:
    """'using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)' (Postfix's words)."""
    if ssl_object is None:
        return ""
    version = ssl_object.version() or "TLS"
    cipher = ssl_object.cipher()
    if cipher is None:
        return f"using {version}"
    name, _, bits = cipher
    return f"using {version} with cipher {name} ({bits}/{bits} bits)"
