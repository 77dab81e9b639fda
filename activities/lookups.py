"""A retried call's look-up of what its lost attempt did, retried within the attempt.

Why: a retried submit first reads ("did my earlier attempt reach the provider?")
and only then sends. Both requests can meet the fault that caused the retry. If a
failed read failed the whole attempt, each retry would need two lucky requests: at
30 % 503 + 10 % 429 one saga in ~30 waited over a minute (``bench/recovery.py``).
Reads are idempotent, so retrying one here, briefly, is safe, and it is far cheaper
than another backed-off activity attempt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio.exceptions import ApplicationError

from domain.common import ErrorType

T = TypeVar("T")

LOOKUP_TRIES = 3
# Waits between tries: this, times the try number, unless a 429 asks for a time.
LOOKUP_PAUSE_SECONDS = 0.5
# A 429 that asks for longer than this fails the attempt: its retry waits instead.
LOOKUP_MAX_PAUSE_SECONDS = 5.0


async def look_up(read: Callable[[], Awaitable[T]]) -> T:
    """``read()``, tried up to ``LOOKUP_TRIES`` times while the provider is unavailable."""
    for tried in range(1, LOOKUP_TRIES + 1):
        try:
            return await read()
        except ApplicationError as error:
            if error.type != ErrorType.PROVIDER_UNAVAILABLE or tried == LOOKUP_TRIES:
                raise
            asked = error.next_retry_delay
            pause = asked.total_seconds() if asked else LOOKUP_PAUSE_SECONDS * tried
            if pause > LOOKUP_MAX_PAUSE_SECONDS:
                raise
            await asyncio.sleep(pause)
    raise AssertionError("unreachable")
