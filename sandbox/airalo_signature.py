"""Airalo's ``airalo-signature`` as the sandbox computes it: on the webhooks it sends, and
on the partner requests it can require (``airalo_require_signature``)."""

from __future__ import annotations

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


def airalo_signature_matches(secret: str, payload: Any, given: str | None) -> bool:
    """Whether ``given`` signs the parsed ``payload``, as the SDK's ``check_signature``
    decides for a parsed payload (constant-time; a missing header never matches)."""
    if not given:
        return False
    expected = airalo_signature(secret, payload).encode()
    return hmac.compare_digest(expected, given.strip().lower().encode())
