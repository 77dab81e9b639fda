"""Heartbeats for every activity that has a heartbeat timeout, in one place.

Why: when a worker dies mid-call, Temporal only learns it when a timeout expires.
Without heartbeats that is the whole ``start_to_close`` timeout (30 s) per call in
flight; with ``heartbeat_timeout`` set by ``workflows.provider_calls`` and this
interceptor beating meanwhile, the retry starts within one heartbeat timeout.
Heartbeats also deliver a workflow's cancellation of a running call (a revoke
stopping a poll) into the activity.

The beat is time-based, not progress-based: a provider call is one HTTP request,
and the httpx timeout, not the heartbeat, bounds how long it may hang.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

# Beats per heartbeat timeout: one lost or late beat must not time the call out.
BEATS_PER_TIMEOUT = 3


class HeartbeatingActivities(Interceptor):
    """Worker interceptor: beat while any activity with a heartbeat timeout runs."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Heartbeating(next)


class _Heartbeating(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        timeout = activity.info().heartbeat_timeout
        if not timeout:
            return await super().execute_activity(input)
        beating = asyncio.create_task(_beat(timeout.total_seconds() / BEATS_PER_TIMEOUT))
        try:
            return await super().execute_activity(input)
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating


async def _beat(every_seconds: float) -> None:
    while True:
        await asyncio.sleep(every_seconds)
        activity.heartbeat()
