"""Airalo's ``airalo-signature``: the bytes its official SDK signs, and the HMAC over them.

The official SDKs (``airalo-sdk`` 1.0.3 on PyPI, ``airalo/helpers/signature.py``; the PHP
and Node SDKs alike) sign a *payload*, not the bytes on the wire: the payload as compact
JSON (``separators=(",", ":")``, non-ASCII kept) with every ``/`` escaped as ``\\/``
(PHP's ``json_encode``), HMAC-SHA512 keyed with the partner's client secret, in hex.
The SDK sends that header on ``POST /v2/token`` (the payload is the form's fields, in
their order, though the body is form-encoded), ``POST /v2/future-orders`` and
``POST /v2/cancel-future-orders``; Airalo signs its webhooks the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

HEADER = "airalo-signature"


def canonical(payload: Any) -> bytes:
    """The bytes the SDK signs for a parsed ``payload`` (a dict, in its key order).

    Also valid JSON for the same payload (``\\/`` is an escape of ``/``), so a client
    can send exactly these bytes as a JSON body: the signature then matches them
    raw as well as re-encoded.
    """
    compact = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return compact.replace("/", "\\/").encode()


def sign(payload: Any, secret: str) -> str:
    """Hex HMAC-SHA512 of :func:`canonical` keyed with ``secret``."""
    return hmac.new(secret.encode(), canonical(payload), hashlib.sha512).hexdigest()
