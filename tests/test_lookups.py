"""``look_up``: a retried call's idempotent read survives a transient fault within the
attempt, and nothing else is retried there."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.exceptions import ApplicationError

from activities import lookups
from activities.lookups import look_up
from domain.common import ErrorType


class FlakyRead:
    def __init__(self, *failures: ApplicationError) -> None:
        self.failures = list(failures)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "found"


def unavailable(delay: float | None = None) -> ApplicationError:
    return ApplicationError(
        "sTN answered 503",
        type=ErrorType.PROVIDER_UNAVAILABLE,
        next_retry_delay=timedelta(seconds=delay) if delay is not None else None,
    )


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lookups, "LOOKUP_PAUSE_SECONDS", 0.0)


async def test_a_transient_fault_is_tried_again_within_the_attempt() -> None:
    read = FlakyRead(unavailable(), unavailable(0))
    assert await look_up(read) == "found"
    assert read.calls == 3


async def test_gives_up_after_its_tries_with_the_providers_error() -> None:
    read = FlakyRead(*(unavailable() for _ in range(lookups.LOOKUP_TRIES)))
    with pytest.raises(ApplicationError, match="503"):
        await look_up(read)
    assert read.calls == lookups.LOOKUP_TRIES


async def test_a_rejection_is_not_retried() -> None:
    read = FlakyRead(ApplicationError("no", type=ErrorType.PROVIDER_REJECTED, non_retryable=True))
    with pytest.raises(ApplicationError, match="no"):
        await look_up(read)
    assert read.calls == 1


async def test_a_long_retry_after_is_left_to_the_activitys_retry() -> None:
    read = FlakyRead(unavailable(lookups.LOOKUP_MAX_PAUSE_SECONDS + 1))
    with pytest.raises(ApplicationError):
        await look_up(read)
    assert read.calls == 1
