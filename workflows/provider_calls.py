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

CALL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    non_retryable_error_types=[ErrorType.PROVIDER_REJECTED],
)
# Give up on an unreachable provider after a day: the saga then fails visibly.
CALL_DEADLINE = timedelta(days=1)
CALL_TIMEOUT = timedelta(seconds=30)

# Polling is the retry policy of one activity (retries cost no history): check
# after 1 s, 2 s, 4 s ... then every 5 minutes; one poll round lasts at most a day.
POLL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
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
