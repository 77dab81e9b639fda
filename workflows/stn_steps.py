"""sTN steps as a workflow calls them: activity, timeouts, retries.

One definition, shared by the line termination saga and the customer churn saga.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.stn import (
        Activation,
        ActivationChecked,
        AwaitActivation,
        CancelTermination,
        StnActivity,
        SubmittedTermination,
        SubmitTermination,
    )
from workflows.provider_calls import call, poll


async def submit_termination(request: SubmitTermination) -> SubmittedTermination:
    return await call(
        StnActivity.SUBMIT_TERMINATION,
        request,
        SubmittedTermination,
        "sTN TerminateSubscription",
    )


async def await_activation_final(activation_id: str) -> ActivationChecked:
    return await poll(
        StnActivity.AWAIT_ACTIVATION_FINAL,
        AwaitActivation(activation_id=activation_id),
        ActivationChecked,
        "sTN QueryActivation until DONE/ERROR",
    )


async def cancel_termination(request: CancelTermination) -> Activation | None:
    result: Activation | None = await call(
        StnActivity.CANCEL_TERMINATION,
        request,
        Activation | None,  # type: ignore[arg-type]
        "sTN CancelTerminateSubscription",
    )
    return result
