"""A provider step that a workflow cancellation must not abandon halfway.

A cancelled activity cannot recall an HTTP call it already sent: cancelling it
would leave an effect at the provider that the saga never learns about. So the
step runs as its own task behind ``asyncio.shield``: a cancellation reaches the
saga's main coroutine (which starts compensating) while the step finishes, and
the compensation first :meth:`settle`\\ s it, then undoes exactly what it did.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from temporalio.exceptions import ActivityError


class InflightStep:
    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    async def run(self, step: Coroutine[Any, Any, None], *, shield: bool = True) -> None:
        """Run ``step``; ``shield=False`` only for runs recorded before shielding existed."""
        self._task = asyncio.ensure_future(step)
        await (asyncio.shield(self._task) if shield else self._task)

    @property
    def started(self) -> bool:
        return self._task is not None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def settle(self) -> None:
        """Wait for a step still in flight; its failure is the compensation's to read."""
        if self.running:
            assert self._task is not None
            with contextlib.suppress(ActivityError, asyncio.CancelledError):
                await self._task
