"""sTN steps as a workflow calls them: activity, timeouts, retries.

One definition, shared by the line termination saga and the customer churn saga.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from domain.common import ErrorType
    from domain.stn import (
        Activation,
        ActivationChecked,
        AwaitActivation,
        CancelTermination,
        StnActivity,
        SubmittedTermination,
        SubmitTermination,
    )

# Provider calls: retry transient faults with backoff, never a rejection.
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


async def submit_termination(request: SubmitTermination) -> SubmittedTermination:
    result: SubmittedTermination = await workflow.execute_activity(
        StnActivity.SUBMIT_TERMINATION,
        request,
        result_type=SubmittedTermination,
        start_to_close_timeout=CALL_TIMEOUT,
        schedule_to_close_timeout=CALL_DEADLINE,
        retry_policy=CALL_RETRY,
        summary="sTN TerminateSubscription",
    )
    return result


async def await_activation_final(activation_id: str) -> ActivationChecked:
    result: ActivationChecked = await workflow.execute_activity(
        StnActivity.AWAIT_ACTIVATION_FINAL,
        AwaitActivation(activation_id=activation_id),
        result_type=ActivationChecked,
        start_to_close_timeout=CALL_TIMEOUT,
        schedule_to_close_timeout=POLL_ROUND,
        retry_policy=POLL_RETRY,
        summary="sTN QueryActivation until DONE/ERROR",
    )
    return result


async def cancel_termination(request: CancelTermination) -> Activation | None:
    result: Activation | None = await workflow.execute_activity(
        StnActivity.CANCEL_TERMINATION,
        request,
        result_type=Activation | None,  # type: ignore[arg-type]
        start_to_close_timeout=CALL_TIMEOUT,
        schedule_to_close_timeout=CALL_DEADLINE,
        retry_policy=CALL_RETRY,
        summary="sTN CancelTerminateSubscription",
    )
    return result
