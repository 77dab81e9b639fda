"""Webhook authentication: Airalo's ``airalo-signature`` and Rebilly's Basic auth."""

from __future__ import annotations

import base64
import json
from typing import Any

from sandbox.airalo_signature import (
    AIRALO_SIGNATURE_HEADER,
    airalo_canonical_json,
    airalo_signature,
)

__all__ = [
    "AIRALO_SIGNATURE_HEADER",
    "airalo_body",
    "airalo_canonical_json",
    "airalo_signature",
    "basic_authorization",
]


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
