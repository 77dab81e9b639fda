"""Rebilly's error bodies: RFC 9457 problem details, and its epoch retry header.

The bodies have the problem-details shape, but Rebilly's OpenAPI definition documents
every error response of the operations we use as ``application/json`` (not
``application/problem+json``), so that is the media type they are sent with.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from starlette.responses import JSONResponse, Response

from sandbox.errors import FieldError, ProviderError, ProviderProfile, status_phrase

ERROR_TYPE_BASE = "https://www.rebilly.com/catalog/all/section/errors/"
PROBLEM_MEDIA_TYPE = "application/json"

_PROBLEM_TYPES: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad Request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not Found"),
    409: ("conflict", "Conflict"),
    422: ("invalid-data", "Invalid data"),
    429: ("too-many-requests", "Too Many Requests"),
}


def render_error(error: ProviderError, path: str) -> Response:
    """RFC 9457 problem details; ``instance`` is the request path."""
    phrase = status_phrase(error.status)
    slug, title = _PROBLEM_TYPES.get(error.status, (phrase.lower().replace(" ", "-"), phrase))
    body: dict[str, Any] = {
        "type": ERROR_TYPE_BASE + slug,
        "title": title,
        "status": error.status,
        "detail": error.message,
        "instance": path,
    }
    if error.status == 422 or error.fields:
        body["invalidFields"] = [
            {"field": item.field, "message": item.message} for item in error.fields
        ]
    return JSONResponse(
        body, status_code=error.status, headers=error.headers, media_type=PROBLEM_MEDIA_TYPE
    )


def rate_limited(seconds: float, now: datetime) -> ProviderError:
    """429 until ``now + seconds``, announced in ``X-RateLimit-Retry-After``."""
    return ProviderError(
        status=429, message=PROFILE.rate_limit_message, headers=retry_headers(seconds, now)
    )


def retry_headers(seconds: float, now: datetime) -> dict[str, str]:
    """Rebilly announces the retry moment as a UTC epoch timestamp, not a delay."""
    return {"X-RateLimit-Retry-After": str(math.ceil(now.timestamp() + seconds))}


PROFILE = ProviderProfile(
    name="rebilly",
    render=render_error,
    retry_headers=retry_headers,
    rate_limit_message="Too many requests.",
)


def invalid(fields: list[FieldError]) -> ProviderError:
    return ProviderError(status=422, message="Invalid data", fields=fields)


def conflict(message: str) -> ProviderError:
    """409: documented for DELETE and ``POST /order-reactivations`` only."""
    return ProviderError(status=409, message=message)


def unprocessable(message: str) -> ProviderError:
    """422 for a valid body the cancellation's or order's state refuses.

    ``PUT``/``POST``/``PATCH /order-cancellations`` document 422 and no 409, so the
    sandbox refuses with 422 (an empty ``invalidFields``) and says why in ``detail``.
    """
    return ProviderError(status=422, message=message)


def not_found(message: str) -> ProviderError:
    return ProviderError(status=404, message=message)
