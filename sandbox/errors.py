"""Provider-neutral errors; each provider renders them in its own wire shape.

Handlers raise :class:`ProviderError`; one exception handler (see ``app.py``) and the fault
gateway turn it into a response through the owning provider's :class:`ProviderProfile`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from typing import Literal

from starlette.responses import Response

ProviderName = Literal["stn", "rebilly", "airalo"]
PROVIDERS: tuple[ProviderName, ...] = ("stn", "rebilly", "airalo")


@dataclass(frozen=True)
class FieldError:
    """One invalid input field. ``code`` is only used by sTN (ServiceStack ``errorCode``)."""

    field: str
    message: str
    code: str = "InvalidValue"
    #: sTN only: ServiceStack's per-field ``meta`` (e.g. ``MaxLength`` of a MaximumLength).
    meta: Mapping[str, str] | None = None


@dataclass
class ProviderError(Exception):
    """An error response, independent of the provider's body shape."""

    status: int
    message: str
    code: str | None = None
    fields: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)


def status_phrase(status: int) -> str:
    """``"Service Unavailable"`` for 503; a generic phrase for unknown codes."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def status_code_name(status: int) -> str:
    """PascalCase phrase, e.g. ``ServiceUnavailable``; used as a default error code."""
    return "".join(word.capitalize() for word in status_phrase(status).replace("-", " ").split())


#: Renders an error for a request path (the path goes into Rebilly's ``instance``).
ErrorRenderer = Callable[[ProviderError, str], Response]
#: Builds the retry header(s) of a 429 from the wait in seconds and the current time.
RetryHeaders = Callable[[float, datetime], Mapping[str, str]]


def retry_after_header(seconds: float, _now: datetime) -> dict[str, str]:
    """Standard ``Retry-After`` in whole seconds (rounded up), as sTN and Airalo send it."""
    return {"Retry-After": str(max(0, math.ceil(seconds)))}


@dataclass(frozen=True)
class ProviderProfile:
    """What the shared gateway needs to know about a provider."""

    name: ProviderName
    render: ErrorRenderer
    retry_headers: RetryHeaders
    rate_limit_message: str = "Too Many Requests"

    def rate_limited(self, seconds: float, now: datetime, path: str) -> Response:
        error = ProviderError(
            status=429,
            message=self.rate_limit_message,
            headers=dict(self.retry_headers(seconds, now)),
        )
        return self.render(error, path)
