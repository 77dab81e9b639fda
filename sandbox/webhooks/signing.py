"""Webhook authentication: Airalo's ``airalo-signature`` and Rebilly's Basic auth."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

AIRALO_SIGNATURE_HEADER = "airalo-signature"


def airalo_canonical_json(payload: Any) -> str:
    """The text the official SDK (``airalo-sdk`` 1.0.3, ``helpers/signature.py``) signs for
    a parsed payload: compact JSON, non-ASCII kept, every ``/`` escaped as ``\\/``."""
    encoded = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return encoded.replace("/", "\\/")


def airalo_signature(secret: str, payload: Any) -> str:
    """Hex HMAC-SHA512 of :func:`airalo_canonical_json` keyed with the client secret."""
    message = airalo_canonical_json(payload).encode("utf-8")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha512).hexdigest()


def airalo_body(payload: Any, *, pretty: bool = False) -> bytes:
    """The bytes POSTed: the canonical form itself, or (``pretty``) an indented variant with
    plain ``/`` that only verifies after the receiver re-encodes it."""
    if pretty:
        return json.dumps(payload, indent=2, ensure_ascii=False).encode("utf-8")
    return airalo_canonical_json(payload).encode("utf-8")


def basic_authorization(username: str, password: str | None) -> str:
    """``Authorization`` header value for HTTP Basic auth (RFC 7617, UTF-8)."""
    token = base64.b64encode(f"{username}:{password or ''}".encode()).decode("ascii")
    return f"Basic {token}"
