"""Airalo steps as a workflow calls them: activity, timeouts, retries.

One definition, used by :class:`workflows.airalo_canceller.FutureOrderCanceller`
(the cancellation procedure both the future-order cancellation saga and the
customer churn saga run) and by their compensation, :func:`recreate_future_orders`
(the saga's revoke, the churn saga's undo). Nothing here depends on a saga class.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, RetryState
from temporalio.exceptions import TimeoutError as ActivityTimeoutError

with workflow.unsafe.imports_passed_through():
    from domain.airalo import (
        CancelFutureOrders,
        CancelFutureOrdersResult,
        CreatedFutureOrder,
        CreateFutureOrder,
        FutureOrder,
        FutureOrdersListed,
        ListFutureOrders,
        RecreatedFutureOrder,
    )
    from domain.lanes import Urgency, before_deadline
    from domain.provider_activities import AiraloCalls

from workflows import patches
from workflows.airalo_listing import list_page_by_page
from workflows.ledger import describe_failure
from workflows.provider_calls import CALL_DEADLINE, call

# Airalo's calls retry as every provider call does (``provider_calls.CALL_RETRY``: at
# most 30 s between attempts), which a cancellation racing its cut-off needs: a longer
# backoff would waste the last minutes before it.
MIN_WINDOW = timedelta(milliseconds=100)


async def list_future_orders(
    request_ids: Sequence[str] | None = None,
    *,
    from_due_date: datetime | None = None,
    to_due_date: datetime | None = None,
    urgency: Urgency = Urgency.ROUTINE,
) -> FutureOrdersListed:
    """The listed (still existing) future orders: ``request_ids`` only, if given.

    Page by page, one activity per HTTP request (``workflows/airalo_listing.py``);
    runs from before patch ``airalo-list-page-by-page`` read every page in one activity.
    """
    request = ListFutureOrders(
        request_ids=list(request_ids) if request_ids is not None else None,
        from_due_date=from_due_date,
        to_due_date=to_due_date,
    )
    if patches.patched(patches.AIRALO_LIST_PAGE_BY_PAGE):
        return await list_page_by_page(request, urgency)
    return await call(
        AiraloCalls.list_future_orders, request, "Airalo GET /v2/future-orders", urgency=urgency
    )


async def cancel_future_orders(
    request_ids: Sequence[str], deadline: datetime | None
) -> CancelFutureOrdersResult:
    """One cancel call for at most ten IDs, retried until ``deadline`` at the latest.

    ``deadline`` is the earliest cut-off of the orders in the call: past it Airalo
    refuses the cancellation anyway, so retrying longer is pointless. The activity
    then fails with a timeout (see :func:`ran_out_of_time`).

    Cancelling the awaiting task waits until Temporal closed the activity
    (``WAIT_CANCELLATION_COMPLETED``): an attempt already sending finishes first, so
    afterwards no call can still reach Airalo, and an answer it got is returned.
    """
    window = CALL_DEADLINE
    if deadline is not None:
        # Never zero (that would mean "no timeout"); a call that reaches Airalo
        # just after the cut-off is answered with a 422 the saga understands.
        window = max(min(window, deadline - workflow.now()), MIN_WINDOW)
    return await call(
        AiraloCalls.cancel_future_orders,
        CancelFutureOrders(request_ids=list(request_ids)),
        f"Airalo POST /v2/cancel-future-orders ({len(request_ids)} IDs)",
        # A cut-off close: this call goes before everything else in Airalo's lane.
        urgency=before_deadline(deadline, workflow.now()),
        schedule_to_close_timeout=window,
        cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    )


def ran_out_of_time(error: ActivityError) -> bool:
    """The call's deadline passed while Airalo kept failing (not a rejection)."""
    return isinstance(error.cause, ActivityTimeoutError) or error.retry_state in (
        RetryState.TIMEOUT,
        RetryState.MAXIMUM_ATTEMPTS_REACHED,
    )


async def create_future_order(
    order: FutureOrder, identical_before: Sequence[str] = ()
) -> CreatedFutureOrder:
    return await call(
        AiraloCalls.create_future_order,
        CreateFutureOrder(order=order, identical_before=list(identical_before)),
        "Airalo POST /v2/future-orders (re-create)",
        urgency=Urgency.UNDO,
    )


async def recreate_future_orders(details: Sequence[FutureOrder]) -> list[RecreatedFutureOrder]:
    """Compensation: re-create cancelled future orders from their recorded details.

    First one lookup of the orders that already have the same details (so a
    retried create can tell the order its lost first attempt made from an
    identical order the partner already had), then one create per order. One
    order failing (e.g. its due date is now less than two days ahead, which
    Airalo refuses) does not stop the others; each result says what happened.
    """
    if not details:
        return []
    try:
        existing = await list_future_orders(
            from_due_date=min(order.due_date for order in details),
            to_due_date=max(order.due_date for order in details),
            urgency=Urgency.UNDO,
        )
    except ActivityError as error:
        reason = f"could not look up existing orders: {describe_failure(error)}"
        return [
            RecreatedFutureOrder(original_request_id=o.request_id, error=reason) for o in details
        ]
    results = []
    # Orders this step created are known too: re-creating two identical orders
    # must not mistake the first for the lost attempt of the second.
    created_here: list[str] = []
    for order in details:
        identical = [o.request_id for o in existing.orders if o.same_order_as(order)]
        try:
            created = await create_future_order(order, identical + created_here)
        except ActivityError as error:
            results.append(
                RecreatedFutureOrder(
                    original_request_id=order.request_id, error=describe_failure(error)
                )
            )
            continue
        created_here.append(created.request_id)
        results.append(
            RecreatedFutureOrder(
                original_request_id=order.request_id, request_id=created.request_id
            )
        )
    return results
