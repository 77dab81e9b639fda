"""sTN steps as a workflow calls them: activity, timeouts, retries.

One definition, shared by the line termination saga and the customer churn saga.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.lanes import Urgency, for_date
    from domain.provider_activities import StnCalls
    from domain.stn import (
        Activation,
        ActivationChecked,
        AwaitActivation,
        CancelTermination,
        SubmittedTermination,
        SubmitTermination,
    )
from workflows import patches
from workflows.provider_calls import call, poll


async def submit_termination(request: SubmitTermination) -> SubmittedTermination:
    urgency = for_date(request.wish_date, workflow.now())
    return await call(
        StnCalls.submit_termination, request, "sTN TerminateSubscription", urgency=urgency
    )


async def await_activation_final(
    activation_id: str, *, urgency: Urgency = Urgency.BULK
) -> ActivationChecked:
    return await poll(
        StnCalls.await_activation_final,
        AwaitActivation(activation_id=activation_id),
        "sTN QueryActivation until DONE/ERROR",
        urgency=urgency,
    )


@dataclass(frozen=True)
class Undo:
    """What asking sTN to cancel a termination came to."""

    # sTN's cancellation activation; None: nothing had been submitted to cancel.
    cancellation: Activation | None
    # The termination as sTN shows it after a cancellation ended DONE (if its id is known).
    termination: Activation | None = None

    @property
    def failure(self) -> str | None:
        """Why the termination stands, if it does (the cancellation ended ERROR, or
        the termination executed regardless)."""
        cancellation, termination = self.cancellation, self.termination
        if cancellation is None:
            return None
        if not cancellation.is_done:
            return (
                f"sTN could not cancel the termination (cancellation {cancellation.id} "
                f"{cancellation.status}: {cancellation.error_message})"
            )
        if termination is not None and termination.is_done:
            return f"sTN executed termination {termination.id} although it was cancelled"
        return None


async def cancel_termination(request: CancelTermination) -> Undo:
    """CancelTerminateSubscription, followed until sTN has decided.

    sTN answers a cancellation activation (``BUSY``) and decides later: ``DONE``
    (the termination will not execute) or ``ERROR`` (it stands). Then, when the
    termination's id is known, one read confirms it did not execute anyway.
    """
    cancellation = await call(
        StnCalls.cancel_termination,
        request,
        "sTN CancelTerminateSubscription",
        urgency=Urgency.UNDO,
    )
    if cancellation is None:
        return Undo(None)
    patches.retired(patches.FOLLOW_STN_CANCELLATION)
    decided = (await await_activation_final(cancellation.id, urgency=Urgency.UNDO)).activation
    if not decided.is_done or request.activation_id is None:
        return Undo(decided)
    termination = await call(
        StnCalls.get_activation,
        AwaitActivation(activation_id=request.activation_id),
        "sTN QueryActivation: the cancelled termination did not execute",
        urgency=Urgency.UNDO,
    )
    return Undo(decided, termination)
