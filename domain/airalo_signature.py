"""Airalo's ``airalo-signature``: the bytes its official SDK signs, and the HMAC over them.

The official Python SDK (``airalo-sdk`` 1.0.3 on PyPI, ``airalo/helpers/signature.py``,
pinned as a dev dependency and the reference here) signs a *payload*, not the bytes on
the wire: the payload as compact JSON (``separators=(",", ":")``, non-ASCII kept) with
every ``/`` escaped as ``\\/`` (PHP's ``json_encode``), HMAC-SHA512 keyed with the
partner's client secret, in hex. It sends that header on ``POST /v2/token`` (the payload
is the form's fields, in their order, though the body is form-encoded),
``POST /v2/future-orders`` and ``POST /v2/cancel-future-orders``; Airalo signs its
webhooks the same way.

The PHP and Node SDKs sign the same requests but not always the same text: PHP's
``json_encode`` also escapes non-ASCII as ``\\uXXXX``, Node's ``JSON.stringify``
escapes neither that nor ``/``. For ASCII payloads without ``/`` all three agree.
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
