"""Rebilly steps as a workflow calls them: activity, timeouts, retries.

One definition, shared by the order cancellation saga and the customer churn
saga; the retry and timeout policies are every provider call's
(``workflows.provider_calls``).
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.lanes import Urgency, for_date
    from domain.provider_activities import RebillyCalls
    from domain.rebilly import (
        Cancellation,
        CancellationChecked,
        CancellationRef,
        DraftDeleted,
        PutCancellation,
        PutResult,
        Reactivated,
        ReactivateOrder,
    )

from workflows.provider_calls import call, poll


async def put_cancellation(request: PutCancellation) -> PutResult:
    summary = f"Rebilly PUT order-cancellation ({request.body.status})"
    urgency = for_date(request.body.churn_time, workflow.now())
    return await call(RebillyCalls.put_cancellation, request, summary, urgency=urgency)


async def find_cancellation(cancellation_id: str) -> Cancellation | None:
    """What a PUT whose answer was lost did: asked to know what to undo."""
    ref = CancellationRef(cancellation_id=cancellation_id)
    return await call(
        RebillyCalls.find_cancellation, ref, "Rebilly GET order-cancellation", urgency=Urgency.UNDO
    )


async def await_cancellation_completed(cancellation_id: str) -> CancellationChecked:
    return await poll(
        RebillyCalls.await_cancellation_completed,
        CancellationRef(cancellation_id=cancellation_id),
        "Rebilly GET order-cancellation until completed",
    )


async def reactivate_order(request: ReactivateOrder) -> Reactivated:
    return await call(
        RebillyCalls.reactivate_order,
        request,
        "Rebilly POST order-reactivation",
        urgency=Urgency.UNDO,
    )


async def delete_draft(cancellation_id: str) -> DraftDeleted:
    ref = CancellationRef(cancellation_id=cancellation_id)
    return await call(
        RebillyCalls.delete_draft,
        ref,
        "Rebilly DELETE draft order-cancellation",
        urgency=Urgency.UNDO,
    )
