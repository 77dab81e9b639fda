"""How every provider call turns HTTP outcomes into Temporal outcomes.

One rule set for all providers:

* 2xx: success.
* 429: retryable, and the next attempt waits what the provider asked for
  (``Retry-After`` seconds or HTTP date, or Rebilly's ``X-RateLimit-Retry-After``
  epoch) via ``ApplicationError.next_retry_delay``.
* 408, 5xx, timeouts, connection errors: retryable ``ProviderUnavailable``.
* any other 4xx: non-retryable ``ProviderRejected`` carrying the provider's own
  message, so the saga can fail or compensate with the reason the provider gave.

Provider modules supply only how to read a message out of their error body.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from temporalio.exceptions import ApplicationError

from domain.common import ErrorType

PROVIDER_REJECTED = ErrorType.PROVIDER_REJECTED.value
PROVIDER_UNAVAILABLE = ErrorType.PROVIDER_UNAVAILABLE.value

MessageReader = Callable[[Any], str | None]


def json_http_client(
    base_url: str,
    timeout_seconds: float,
    headers: dict[str, str] | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """A provider client: base URL from settings, JSON by default, bounded time.

    ``transport`` is for tests (``httpx.MockTransport``): the same client as production.
    """
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Accept": "application/json", **(headers or {})},
        timeout=timeout_seconds,
        transport=transport,
    )


def body_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text or None


def retry_after(response: httpx.Response, now: datetime | None = None) -> timedelta | None:
    """The wait a 429 asks for, from whichever header the provider uses."""
    now = now or datetime.now(UTC)
    epoch = response.headers.get("X-RateLimit-Retry-After")
    if epoch:
        try:
            return max(timedelta(0), datetime.fromtimestamp(float(epoch), UTC) - now)
        except ValueError:
            pass
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return timedelta(seconds=max(0.0, float(value)))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(timedelta(0), when - now)


def raise_for_provider(
    response: httpx.Response, provider: str, read_message: MessageReader
) -> None:
    """Raise the right ``ApplicationError`` for a non-2xx response."""
    if response.is_success:
        return
    body = body_of(response)
    message = read_message(body) if body is not None else None
    summary = (
        f"{provider} answered {response.status_code} to {response.request.method} "
        f"{response.request.url.path}: {message or response.reason_phrase}"
    )
    status = response.status_code
    if status == 429:
        delay = retry_after(response)
        raise ApplicationError(
            summary,
            {"provider": provider, "status": status, "body": body},
            type=PROVIDER_UNAVAILABLE,
            # Round up: retrying a fraction of a second early only earns another 429.
            next_retry_delay=timedelta(seconds=math.ceil(delay.total_seconds())) if delay else None,
        )
    if status == 408 or status >= 500:
        raise ApplicationError(
            summary,
            {"provider": provider, "status": status, "body": body},
            type=PROVIDER_UNAVAILABLE,
        )
    raise ApplicationError(
        summary,
        {"provider": provider, "status": status, "body": body, "message": message},
        type=PROVIDER_REJECTED,
        non_retryable=True,
    )


def unavailable(provider: str, error: httpx.HTTPError) -> ApplicationError:
    """A transport fault (timeout, refused connection) as a retryable error."""
    return ApplicationError(
        f"{provider} unreachable: {type(error).__name__}: {error}",
        {"provider": provider},
        type=PROVIDER_UNAVAILABLE,
    )
