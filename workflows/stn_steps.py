"""sTN steps as a workflow calls them: activity, timeouts, retries.

One definition, shared by the line termination saga and the customer churn saga.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.provider_activities import StnCalls
    from domain.stn import (
        Activation,
        ActivationChecked,
        AwaitActivation,
        CancelTermination,
        SubmittedTermination,
        SubmitTermination,
    )
from workflows.provider_calls import call, poll


async def submit_termination(request: SubmitTermination) -> SubmittedTermination:
    return await call(StnCalls.submit_termination, request, "sTN TerminateSubscription")


async def await_activation_final(activation_id: str) -> ActivationChecked:
    return await poll(
        StnCalls.await_activation_final,
        AwaitActivation(activation_id=activation_id),
        "sTN QueryActivation until DONE/ERROR",
    )


async def cancel_termination(request: CancelTermination) -> Activation | None:
    return await call(StnCalls.cancel_termination, request, "sTN CancelTerminateSubscription")
