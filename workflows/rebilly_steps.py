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

from workflows.stn_steps import CALL_DEADLINE, CALL_RETRY, CALL_TIMEOUT, POLL_RETRY, POLL_ROUND


async def put_cancellation(request: PutCancellation) -> PutResult:
    result: PutResult = await workflow.execute_activity(
        RebillyActivity.PUT_CANCELLATION,
        request,
        result_type=PutResult,
        start_to_close_timeout=CALL_TIMEOUT,
        schedule_to_close_timeout=CALL_DEADLINE,
        retry_policy=CALL_RETRY,
        summary=f"Rebilly PUT order-cancellation ({request.body.status})",
    )
    return result


async def find_cancellation(cancellation_id: str) -> Cancellation | None:
    result: Cancellation | None = await workflow.execute_activity(
        RebillyActivity.FIND_CANCELLATION,
        CancellationRef(cancellation_id=cancellation_id),
        result_type=Cancellation | None,  # type: ignore[arg-type]
        start_to_close_timeout=CALL_TIMEOUT,
        schedule_to_close_timeout=CALL_DEADLINE,
        retry_policy=CALL_RETRY,
        summary="Rebilly GET order-cancellation",
    )
    return result


async def await_cancellation_completed(cancellation_id: str) -> CancellationChecked:
    result: CancellationChecked = await workflow.execute_activity(
        RebillyActivity.AWAIT_CANCELLATION_COMPLETED,
        CancellationRef(cancellation_id=cancellation_id),
        result_type=CancellationChecked,
        start_to_close_timeout=CALL_TIMEOUT,
        schedule_to_close_timeout=POLL_ROUND,
        retry_policy=POLL_RETRY,
        summary="Rebilly GET order-cancellation until completed",
    )
    return result


async def reactivate_order(request: ReactivateOrder) -> Reactivated:
    result: Reactivated = await workflow.execute_activity(
        RebillyActivity.REACTIVATE_ORDER,
        request,
        result_type=Reactivated,
        start_to_close_timeout=CALL_TIMEOUT,
        schedule_to_close_timeout=CALL_DEADLINE,
        retry_policy=CALL_RETRY,
        summary="Rebilly POST order-reactivation",
    )
    return result


async def delete_draft(cancellation_id: str) -> DraftDeleted:
    result: DraftDeleted = await workflow.execute_activity(
        RebillyActivity.DELETE_DRAFT,
        CancellationRef(cancellation_id=cancellation_id),
        result_type=DraftDeleted,
        start_to_close_timeout=CALL_TIMEOUT,
        schedule_to_close_timeout=CALL_DEADLINE,
        retry_policy=CALL_RETRY,
        summary="Rebilly DELETE draft order-cancellation",
    )
    return result
