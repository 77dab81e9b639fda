"""Time source and the timestamp formats the providers use.

Every time-dependent rule reads the clock through :class:`SandboxContext.now`, so tests can
swap the wall clock for a :class:`ManualClock` and move time instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real UTC wall clock (the default clock)."""
    return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to; for tests of time-dependent rules."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = (start or utc_now()).astimezone(UTC)

    def __call__(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta | None = None, /, **kwargs: float) -> datetime:
        """Move forward by ``delta`` or by ``timedelta(**kwargs)``; returns the new time."""
        self._now += delta if delta is not None else timedelta(**kwargs)
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment.astimezone(UTC)


def truncate_ms(moment: datetime) -> datetime:
    """Drop sub-millisecond precision so that formatted timestamps round-trip exactly."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def format_ms(moment: datetime) -> str:
    """``2025-02-19T14:51:09.823Z`` (sTN, the call log)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def format_seconds(moment: datetime) -> str:
    """``2025-02-19T14:51:09Z`` (Rebilly)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: object, *, require_offset: bool = False) -> datetime | None:
    """Parse an ISO 8601 date-time; ``None`` when it is not one.

    Naive values are read as UTC unless ``require_offset`` is set, in which case they are
    rejected (sTN requires an explicit offset on ``wishDate``).
    """
    if not isinstance(value, str) or "T" not in value.upper():
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None and require_offset:
        return None
    return as_utc(parsed)


def as_utc(moment: datetime) -> datetime:
    """Aware UTC; naive values are taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
