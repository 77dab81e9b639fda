"""Airalo's ``airalo-signature`` header: verified as Airalo's own SDK computes it.

Airalo documents the header as the HMAC-SHA512 of the body keyed with the
partner's client secret. Its official SDK (``airalo-sdk`` 1.0.3,
``helpers/signature.py``) signs a canonical form rather than the raw bytes: compact
JSON (``separators=(",", ":")``, non-ASCII kept), with every ``/`` escaped as
``\\/`` (PHP's ``json_encode``) when it signs a parsed payload, and unescaped when
it is handed the body as text (it escapes, then parses, which undoes the escape).
A signature is accepted over any of those forms or over the raw bytes: each needs
the secret, and each is the same JSON content; a change to the content fails all.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from domain.airalo_signature import HEADER, canonical, sign

__all__ = ["HEADER", "canonical", "sign", "verify"]


def _hmac(data: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), data, hashlib.sha512).hexdigest()


def verify(body: bytes, signature: str | None, secret: str) -> bool:
    """``signature`` matches ``body`` (raw bytes as received), in constant time."""
    if not signature:
        return False
    try:
        payload = json.loads(body)
        compact = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        forms = (canonical(payload), compact, body)
    except ValueError:  # not JSON, or a string no UTF-8 holds (a lone surrogate escaped)
        return False
    given = signature.strip().lower().encode()  # bytes: compare_digest refuses non-ASCII str
    return any(hmac.compare_digest(_hmac(form, secret).encode(), given) for form in forms)
