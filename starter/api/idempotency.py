"""Deliveries: turning an idempotency key and a request into a :class:`Delivery`.

Keys are hashed with the deployment's ``CANCEL_WORKFLOW_ID_KEY`` before they go
anywhere (memo, search attribute): a caller's key may carry data we must not
index in clear. An ``Idempotency-Key`` header is scoped to the API key that sent
it (two callers may both use "1"); a CloudEvent's (``source``, ``id``) is globally
unique by the CloudEvents spec, so it is not.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from pydantic import BaseModel

from starter.sagas import Delivery

#: An Idempotency-Key header: printable ASCII without spaces, at most this long.
MAX_HEADER_KEY_LENGTH = 200
#: The rule of :func:`header_key_problem`, for the OpenAPI document.
HEADER_KEY_SCHEMA = {
    "minLength": 1,
    "maxLength": MAX_HEADER_KEY_LENGTH,
    "pattern": f"^[!-~]{{1,{MAX_HEADER_KEY_LENGTH}}}$",
}


def _keyed(secret: bytes, *parts: str) -> str:
    message = "\0".join(parts).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:40]


def header_key(secret: bytes, caller: str, key: str) -> str:
    return _keyed(secret, "header", caller, key)


def event_key(secret: bytes, source: str, event_id: str) -> str:
    return _keyed(secret, "cloudevent", source, event_id)


def request_digest(request: BaseModel) -> str:
    """SHA-256 of the validated request (its kind and canonical JSON)."""
    canonical = json.dumps(
        request.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(f"{type(request).__name__}\n{canonical}".encode()).hexdigest()


def delivery_for(key: str, request: BaseModel) -> Delivery:
    return Delivery(key=key, request_digest=request_digest(request))


def header_key_problem(key: str) -> str | None:
    """Why an Idempotency-Key header is unusable, or None."""
    if not 1 <= len(key) <= MAX_HEADER_KEY_LENGTH:
        return f"must be 1 to {MAX_HEADER_KEY_LENGTH} characters"
    if not all("!" <= char <= "~" for char in key):
        return "must be printable ASCII without spaces"
    return None
