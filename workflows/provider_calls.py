"""How a workflow calls a provider activity: timeouts and retries, defined once.

Every provider step (``stn_steps``, ``rebilly_steps``, ``airalo_steps``) goes
through :func:`call` or :func:`poll`, so the same rules hold for every provider:
transient faults and 429s are retried with backoff (a 429 after the provider's
own retry-after), a rejection never is.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.types import MethodAsyncSingleParam

with workflow.unsafe.imports_passed_through():
    from domain.common import ErrorType

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


async def call(
    activity: ProviderActivity[A, T],
    arg: A,
    summary: str,
    *,
    retry_policy: RetryPolicy = CALL_RETRY,
    schedule_to_close_timeout: timedelta = CALL_DEADLINE,
    cancellation_type: workflow.ActivityCancellationType = (
        workflow.ActivityCancellationType.TRY_CANCEL
    ),
) -> T:
    """One provider call, retried until it succeeds, is rejected, or the deadline passes."""
    return await workflow.execute_activity_method(
        activity,
        arg,
        start_to_close_timeout=CALL_TIMEOUT,
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
        schedule_to_close_timeout=schedule_to_close_timeout,
        retry_policy=retry_policy,
        summary=summary,
        cancellation_type=cancellation_type,
    )


async def poll(activity: ProviderActivity[A, T], arg: A, summary: str) -> T:
    """Ask until the provider's status is final (the activity raises while pending)."""
    return await call(
        activity, arg, summary, retry_policy=POLL_RETRY, schedule_to_close_timeout=POLL_ROUND
    )
