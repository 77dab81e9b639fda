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

Every call is measured in one place, :class:`ProviderClient` (the client
:func:`json_http_client` builds): ``cancel_provider_call_duration_seconds`` by
provider, route template, status and outcome, through the running activity's metric
meter, so it reaches the worker's Prometheus endpoint beside the SDK's own metrics.
A client built with a :class:`~activities.rate_pacing.RateLimitPacer` also slows down
while the provider's announced quota (``X-RateLimit-Remaining``) is low, before a 429.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.rate_pacing import RateLimitPacer
from config.logs import provider_of
from config.telemetry import PROVIDER_CALL_SECONDS
from domain.common import ErrorType

PROVIDER_REJECTED = ErrorType.PROVIDER_REJECTED.value
PROVIDER_UNAVAILABLE = ErrorType.PROVIDER_UNAVAILABLE.value

MessageReader = Callable[[Any], str | None]


#: A path segment kept in a route label: a word (``order-cancellations``,
#: ``QueryActivation``) or an API version (``v2``). Anything else (ids, numbers)
#: becomes ``{id}``, so no id or phone number can reach a label.
_ROUTE_WORD = re.compile(r"v\d{1,2}|[A-Za-z]{1,40}(?:[-_][A-Za-z]{1,40}){0,5}")


def route_template(method: str, path: str, base_path: str = "") -> str:
    """``PUT /order-cancellations/{id}``: the method and the path below the client's
    base URL, each segment that is not a word replaced by ``{id}``; the query never
    counts (sTN's lookups carry phone numbers there)."""
    base = base_path.rstrip("/")
    if base and path.startswith(base + "/"):
        path = path[len(base) :]
    segments = [
        segment if _ROUTE_WORD.fullmatch(segment) else "{id}"
        for segment in path.strip("/").split("/")
        if segment
    ]
    return f"{method.upper()} /{'/'.join(segments)}"


class Outcome(StrEnum):
    """How a provider's HTTP status is treated: the one classification both the
    errors (:func:`raise_for_provider`) and the metrics (``outcome`` label) use."""

    OK = "ok"
    REJECTED = "rejected"  # other 4xx: not retried
    THROTTLED = "throttled"  # 429: retried after the provider's wait
    UNAVAILABLE = "unavailable"  # 408, 5xx (and transport faults): retried


def outcome_of(status: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome.OK
    if status == 429:
        return Outcome.THROTTLED
    if status == 408 or status >= 500:
        return Outcome.UNAVAILABLE
    return Outcome.REJECTED


class ProviderClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` that measures every call it sends (see the module docstring).

    Measured only inside an activity (the meter is the activity's); ``provider`` is
    the label, else the activity type's prefix (``stn.submit_termination`` → ``stn``).
    """

    def __init__(
        self, *, provider: str | None = None, pacer: RateLimitPacer | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.provider = provider
        self.pacer = pacer

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        if self.pacer is not None:
            # Before the clock starts: the wait is ours, not the provider's latency.
            await self.pacer.wait(request)
        started = time.monotonic()
        try:
            response = await super().send(request, **kwargs)
        except httpx.TimeoutException:
            self._observe(request, started, "timeout", Outcome.UNAVAILABLE)
            raise
        except httpx.HTTPError:
            self._observe(request, started, "error", Outcome.UNAVAILABLE)
            raise
        self._observe(request, started, str(response.status_code), outcome_of(response.status_code))
        if self.pacer is not None:
            self.pacer.observe(request, response)
        return response

    def _observe(self, request: httpx.Request, started: float, status: str, outcome: str) -> None:
        if not activity.in_activity():
            return
        meter = activity.metric_meter()
        provider = self.provider or provider_of(activity.info().activity_type) or "unknown"
        meter.create_histogram_float(
            PROVIDER_CALL_SECONDS, "Provider HTTP calls: latency, by route, status, outcome", "s"
        ).record(
            time.monotonic() - started,
            {
                "provider": provider,
                "route": route_template(request.method, request.url.path, self.base_url.path),
                "status": status,
                "outcome": outcome,
            },
        )


def json_http_client(
    base_url: str,
    timeout_seconds: float,
    headers: dict[str, str] | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    provider: str | None = None,
    pacer: RateLimitPacer | None = None,
) -> httpx.AsyncClient:
    """A provider client: base URL from settings, JSON by default, bounded time,
    every call measured (:class:`ProviderClient`, labelled ``provider``), and paced
    by ``pacer`` when given.

    ``transport`` is for tests (``httpx.MockTransport``): the same client as production.
    """
    return ProviderClient(
        provider=provider,
        pacer=pacer,
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
    outcome = outcome_of(status)
    if outcome == Outcome.THROTTLED:
        delay = retry_after(response)
        raise ApplicationError(
            summary,
            {"provider": provider, "status": status, "body": body},
            type=PROVIDER_UNAVAILABLE,
            # Round up: retrying a fraction of a second early only earns another 429.
            next_retry_delay=timedelta(seconds=math.ceil(delay.total_seconds())) if delay else None,
        )
    if outcome == Outcome.UNAVAILABLE:
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
