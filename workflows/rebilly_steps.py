"""Rebilly steps as a workflow calls them: activity, timeouts, retries.

One definition, shared by the order cancellation saga and (later) the customer
churn saga. The retry and timeout policies are the ones every provider call
uses (see ``stn_steps``): transient faults and 429s are retried (a 429 after
Rebilly's ``X-RateLimit-Retry-After``), rejections never are.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.rebilly import (
        Cancellation,
        CancellationChecked,
        CancellationRef,
        DraftDeleted,
        PutCancellation,
        PutResult,
        Reactivated,
        ReactivateOrder,
        RebillyActivity,
    )

from workflows.provider_calls import call, poll


async def put_cancellation(request: PutCancellation) -> PutResult:
    result: PutResult = await call(
        RebillyActivity.PUT_CANCELLATION,
        request,
        PutResult,
        f"Rebilly PUT order-cancellation ({request.body.status})",
    )
    return result


async def find_cancellation(cancellation_id: str) -> Cancellation | None:
    result: Cancellation | None = await call(
        RebillyActivity.FIND_CANCELLATION,
        CancellationRef(cancellation_id=cancellation_id),
        Cancellation | None,  # type: ignore[arg-type]
        "Rebilly GET order-cancellation",
    )
    return result


async def await_cancellation_completed(cancellation_id: str) -> CancellationChecked:
    result: CancellationChecked = await poll(
        RebillyActivity.AWAIT_CANCELLATION_COMPLETED,
        CancellationRef(cancellation_id=cancellation_id),
        CancellationChecked,
        "Rebilly GET order-cancellation until completed",
    )
    return result


async def reactivate_order(request: ReactivateOrder) -> Reactivated:
    result: Reactivated = await call(
        RebillyActivity.REACTIVATE_ORDER,
        request,
        Reactivated,
        "Rebilly POST order-reactivation",
    )
    return result


async def delete_draft(cancellation_id: str) -> DraftDeleted:
    result: DraftDeleted = await call(
        RebillyActivity.DELETE_DRAFT,
        CancellationRef(cancellation_id=cancellation_id),
        DraftDeleted,
        "Rebilly DELETE draft order-cancellation",
    )
    return result
