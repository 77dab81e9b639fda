"""How a workflow calls a provider activity: lane, priority, timeouts and retries, once.

Every provider step (``stn_steps``, ``rebilly_steps``, ``airalo_steps``) goes
through :func:`call` or :func:`poll`, so the same rules hold for every provider:
transient faults and 429s are retried with backoff (a 429 after the provider's
own retry-after), a rejection never is. Each call runs on its provider's lane (its
own task queue, ``domain/lanes.py``) with a priority: the call's own urgency, raised
to :data:`~domain.lanes.Urgency.UNDO` while the saga applies an operator's request
or compensates (:func:`urgent`). Runs started before lanes (patch ``provider-lanes``)
call every provider on the saga's own task queue.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import activity, workflow
from temporalio.common import Priority, RetryPolicy
from temporalio.types import MethodAsyncSingleParam

with workflow.unsafe.imports_passed_through():
    from domain.common import ErrorType
    from domain.lanes import Urgency, lane_queue, provider_of

from workflows import patches

A = TypeVar("A")
T = TypeVar("T")
# A provider activity as declared in ``domain.provider_activities``.
ProviderActivity = MethodAsyncSingleParam[Any, A, T]

# Retries back off 1 s, 2 s, 4 s ... up to 30 s. Measured (bench/recovery.py, 200 sTN
# terminations at 30 % 503 + 10 % 429): a 2-minute cap let a retried submit, which
# makes two calls (look up, then send), drift into multi-minute waits; 30 s bounds the
# wait after an outage ends, and a provider that is down still sees at most two calls
# a minute per saga. 429s wait what the provider asks instead (provider_http).
CALL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=[ErrorType.PROVIDER_REJECTED],
)
# Give up on an unreachable provider after a day: the saga then fails visibly.
CALL_DEADLINE = timedelta(days=1)
# One attempt: at most two HTTP requests (a retry's look-up, then the call), each
# bounded by the client's own timeout (15 s by default).
CALL_TIMEOUT = timedelta(seconds=60)
# A worker that dies mid-call is noticed after this long, not after CALL_TIMEOUT:
# activities beat every third of it (activities/heartbeat.py).
HEARTBEAT_TIMEOUT = timedelta(seconds=10)

# Polling is the retry policy of one activity (retries cost no history): check
# after 1 s, 1.5 s, 2.3 s ... then every 2 minutes; one poll round lasts at most a day.
# A failed check (5xx, 429) counts as an attempt too: with a doubling backoff up to
# 5 minutes, a few faults in a row pushed a finished termination's confirmation out
# by minutes (bench/recovery.py: p99 136 s at 30 % 503 + 10 % 429); the gentler
# curve keeps that tail short while a provider that takes hours still sees at most
# one check every 2 minutes per saga.
POLL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=1.5,
    maximum_interval=timedelta(minutes=2),
    non_retryable_error_types=[ErrorType.PROVIDER_REJECTED],
)
POLL_ROUND = timedelta(days=1)


# The urgency every call of the current task has at least (an operator's request, a
# compensation). A context variable: a task the saga starts inherits it, others do not.
_floor: ContextVar[Urgency | None] = ContextVar("urgency_floor", default=None)


@contextlib.contextmanager
def urgent(urgency: Urgency = Urgency.UNDO) -> Iterator[None]:
    """Every call made inside (and in tasks started inside) is at least this urgent."""
    token = _floor.set(min(urgency, _floor.get() or urgency))
    try:
        yield
    finally:
        _floor.reset(token)


def _lane_of(activity_method: ProviderActivity[Any, Any]) -> str:
    definition = activity._Definition.must_from_callable(activity_method)
    assert definition.name is not None, "provider activities are declared with a name"
    return lane_queue(workflow.info().task_queue, provider_of(definition.name))


async def call(
    activity_method: ProviderActivity[A, T],
    arg: A,
    summary: str,
    *,
    urgency: Urgency = Urgency.ROUTINE,
    retry_policy: RetryPolicy = CALL_RETRY,
    schedule_to_close_timeout: timedelta = CALL_DEADLINE,
    cancellation_type: workflow.ActivityCancellationType = (
        workflow.ActivityCancellationType.TRY_CANCEL
    ),
) -> T:
    """One provider call, retried until it succeeds, is rejected, or the deadline passes."""
    lane: dict[str, Any] = {}
    if patches.patched(patches.PROVIDER_LANES):
        floor = _floor.get()
        lane["task_queue"] = _lane_of(activity_method)
        lane["priority"] = Priority(priority_key=min(urgency, floor or urgency))
    return await workflow.execute_activity_method(
        activity_method,
        arg,
        start_to_close_timeout=CALL_TIMEOUT,
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
        schedule_to_close_timeout=schedule_to_close_timeout,
        retry_policy=retry_policy,
        summary=summary,
        cancellation_type=cancellation_type,
        **lane,
    )


async def poll(
    activity_method: ProviderActivity[A, T],
    arg: A,
    summary: str,
    *,
    urgency: Urgency = Urgency.BULK,
) -> T:
    """Ask until the provider's status is final (the activity raises while pending).

    Bulk by default: a wave's polls go after every other call in their lane.
    """
    return await call(
        activity_method,
        arg,
        summary,
        urgency=urgency,
        retry_policy=POLL_RETRY,
        schedule_to_close_timeout=POLL_ROUND,
    )
