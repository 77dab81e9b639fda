"""CustomerChurn's logic with every provider mocked: step order, the pivot, compensation
(the line first, then newest first), forward recovery when the line is already gone,
NEEDS_ATTENTION and the operator's resolve."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.worker import Worker

from config.settings import OrchestratorSettings
from domain.airalo import LISTED_STATUSES, AiraloActivity
from domain.churn import CustomerChurnRequest, ResolveAction
from domain.common import SagaKind
from domain.rebilly import Cancellation, PutCancellation, PutResult, RebillyActivity, RebillyStatus
from domain.stn import StnActivity
from starter import sagas
from tests.fast.fakes import FakeProviders, Gate, reject
from tests.fast.polling import wait_for_phase
from tests.helpers import record_history, result_of, status_of

DRAFT_BILLING = RebillyActivity.PUT_CANCELLATION
SUBMIT = StnActivity.SUBMIT_TERMINATION
# One page of one status a call: a lookup of orders the fake lists finds them on the
# first page of pending; the compensation's listing (by due date) reads every status.
LIST = AiraloActivity.LIST_FUTURE_ORDERS_PAGE
LIST_ALL = [LIST] * len(LISTED_STATUSES)
CANCEL_ESIMS = AiraloActivity.CANCEL_FUTURE_ORDERS
POLL_LINE = StnActivity.AWAIT_ACTIVATION_FINAL
CONFIRM_BILLING = RebillyActivity.PUT_CANCELLATION
POLL_BILLING = RebillyActivity.AWAIT_CANCELLATION_COMPLETED
CANCEL_LINE = StnActivity.CANCEL_TERMINATION
DELETE_DRAFT = RebillyActivity.DELETE_DRAFT
RECREATE = AiraloActivity.CREATE_FUTURE_ORDER
REACTIVATE = RebillyActivity.REACTIVATE_ORDER
# Every part prepared, in order of reversibility: billing draft, line, eSIMs.
PREPARE = [DRAFT_BILLING, SUBMIT, LIST, CANCEL_ESIMS]
# Undone the line first (it alone may be beyond undoing), then newest first: eSIMs
# (look up, re-create), billing draft.
UNDO = [CANCEL_LINE, *LIST_ALL, RECREATE, DELETE_DRAFT]


def in_days(days: float) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0)


def soon() -> datetime:
    # The churn's durable timer is part of what these tests check: ~1 s of wall clock.
    return datetime.now(UTC) + timedelta(seconds=1)


async def start(
    client: Client,
    settings: OrchestratorSettings,
    fakes: FakeProviders,
    uid: str,
    wish: datetime,
    esims_due: list[datetime],
    **overrides: Any,
) -> str:
    data: dict[str, Any] = {
        "customerId": f"C-{uid}",
        "wishDate": wish,
        "stn": {"subscriptionId": f"SUB-{uid}"},
        "rebilly": {"orderId": f"ORD-{uid}"},
        "airalo": {"requestIds": [fakes.add_future_order(due) for due in esims_due]},
    }
    data.update(overrides)
    request = CustomerChurnRequest.model_validate({k: v for k, v in data.items() if v})
    started = await sagas.start(client, SagaKind.CUSTOMER_CHURN, request, settings)
    return started.workflow_id


async def test_happy_path_prepares_waits_passes_the_pivot_then_confirms_billing(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    # ~1 s of wall clock: the timer must hold the pivot (the sTN poll) until the date.
    wish = soon()
    workflow_id = await start(client, settings, fakes, uid, wish, [in_days(3), in_days(4)])

    final = await result_of(client, workflow_id)

    assert final["phase"] == "COMPLETED", final["lastError"]
    assert fakes.names(checks=False) == [*PREPARE, POLL_LINE, CONFIRM_BILLING, POLL_BILLING]
    puts = fakes.args(DRAFT_BILLING)
    assert [p.body.status for p in puts] == [RebillyStatus.DRAFT, RebillyStatus.CONFIRMED]
    assert puts[0].cancellation_id == puts[1].cancellation_id
    assert all(p.body.churn_time == wish for p in puts)
    assert fakes.args(SUBMIT)[0].wish_date == wish
    poll = next(call for call in fakes.calls if call.activity == POLL_LINE)
    assert poll.at >= wish  # the timer held the pivot until the churn date
    assert {o["outcome"] for o in final["airalo"]["outcomes"]} == {"CANCELLED"}


async def test_esims_due_before_the_churn_date_are_kept(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    workflow_id = await start(client, settings, fakes, uid, in_days(3), [in_days(2), in_days(6)])

    waiting = await wait_for_phase(client, workflow_id, "WAITING")

    kept, cancelled = (o["requestId"] for o in waiting["airalo"]["outcomes"])
    outcomes = {o["requestId"]: o["outcome"] for o in waiting["airalo"]["outcomes"]}
    assert outcomes == {kept: "KEPT", cancelled: "CANCELLED"}
    assert [c.request_ids for c in fakes.args(CANCEL_ESIMS)] == [[cancelled]]


async def test_stn_error_undoes_every_part_newest_first(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    fakes.stn_outcome, fakes.stn_message = "ERROR", "number is ported out"
    # ~1 s of wall clock: sTN is only polled (and answers ERROR) after the churn date.
    workflow_id = await start(client, settings, fakes, uid, soon(), [in_days(3)])

    final = await result_of(client, workflow_id)

    assert final["phase"] == "COMPENSATED" and "number is ported out" in final["cause"]
    # sTN did not terminate the line: nothing to cancel there, the rest undone in reverse.
    assert fakes.names(checks=False) == [*PREPARE, POLL_LINE, *LIST_ALL, RECREATE, DELETE_DRAFT]
    assert [p.body.status for p in fakes.args(DRAFT_BILLING)] == [RebillyStatus.DRAFT]
    assert sorted(final["undoneParts"]) == ["airalo", "rebilly", "stn"]
    assert "line_kept" in [s["step"] for s in final["steps"]]


async def test_revoke_before_the_date_undoes_the_line_first_then_newest_first(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    workflow_id = await start(client, settings, fakes, uid, in_days(3), [in_days(6)])
    waiting = await wait_for_phase(client, workflow_id, "WAITING")

    state = await sagas.revoke(client, workflow_id, "customer stayed")

    assert state["phase"] == "COMPENSATED" and "customer stayed" in state["cause"]
    assert fakes.names(checks=False) == [*PREPARE, *UNDO]
    assert fakes.args(CANCEL_LINE)[0].activation_id == waiting["stn"]["activationId"]
    assert fakes.args(DELETE_DRAFT)[0].cancellation_id == waiting["rebilly"]["cancellationId"]
    assert (await result_of(client, workflow_id))["phase"] == "COMPENSATED"


async def test_a_revoke_that_comes_after_stn_executed_the_line_finishes_the_churn(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    """The churn date passed and sTN executed the line, but the saga's poll has not seen
    it yet, so its revoke validator accepts a revoke. Undoing billing and eSIMs then
    would leave a terminated line billed: the line is undone first, sTN refuses, and
    the churn goes forward instead; the revoke is answered with why."""
    poll_in_flight = Gate()
    fakes.on(POLL_LINE, poll_in_flight.hold(fakes.default(POLL_LINE)))
    fakes.on(CANCEL_LINE, reject("sTN: the activation has already been executed"))
    workflow_id = await start(client, settings, fakes, uid, soon(), [in_days(6)])
    await poll_in_flight.entered.wait()  # the date has come; the poll has no answer yet

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await sagas.revoke(client, workflow_id, "customer stayed")

    assert "too late: sTN had already terminated the line" in str(refused.value.cause)
    final = await result_of(client, workflow_id)
    assert final["phase"] == "COMPLETED" and "too late" in final["cause"]
    assert final["stn"]["activationStatus"] == "DONE"
    # Nothing undone: no eSIM re-created, no draft deleted; billing confirmed and completed.
    assert fakes.names(checks=False) == [
        *PREPARE,
        POLL_LINE,
        CANCEL_LINE,
        POLL_LINE,
        CONFIRM_BILLING,
        POLL_BILLING,
    ]
    assert final["undoneParts"] == [] and final["rebilly"]["status"] == "completed"
    poll_in_flight.open()


async def test_workflow_cancellation_undoes_the_line_first_then_newest_first(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    workflow_id = await start(client, settings, fakes, uid, in_days(3), [in_days(6)])
    await wait_for_phase(client, workflow_id, "WAITING")

    await sagas.cancel(client, workflow_id)

    with pytest.raises(WorkflowFailureError):
        await result_of(client, workflow_id)
    final = await status_of(client, workflow_id)
    assert final["phase"] == "COMPENSATED" and final["cause"] == "workflow cancelled"
    assert fakes.names(checks=False) == [*PREPARE, *UNDO]


async def test_a_failing_compensation_needs_attention_until_a_retry_succeeds(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    workflow_id = await start(client, settings, fakes, uid, in_days(3), [in_days(6)])
    await wait_for_phase(client, workflow_id, "WAITING")
    sold_out = reject("Airalo 422: package is sold out")
    fakes.on(RECREATE, sold_out, sold_out)  # the revoke's attempt and the first retry

    state = await sagas.revoke(client, workflow_id, "customer stayed")

    assert state["phase"] == "NEEDS_ATTENTION"
    assert [(p["part"], p["kind"]) for p in state["pendingActions"]] == [("airalo", "undo")]
    assert "sold out" in state["pendingActions"][0]["error"]
    # The other parts were still undone, in order, around the failing one.
    assert fakes.names(checks=False) == [*PREPARE, *UNDO]
    assert sorted(state["undoneParts"]) == ["rebilly", "stn"]

    still = await sagas.resolve(client, workflow_id, ResolveAction.RETRY, "first try")
    assert still["phase"] == "NEEDS_ATTENTION"
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await sagas.revoke(client, workflow_id, "again")  # only resolve is accepted now
    assert "cannot revoke: the saga is NEEDS_ATTENTION" in str(refused.value.cause)

    resolved = await sagas.resolve(client, workflow_id, ResolveAction.RETRY, "Airalo fixed")

    assert resolved["phase"] == "COMPENSATED" and resolved["pendingActions"] == []
    # Each retry redoes only the part still owed: the line and billing are not touched again.
    assert fakes.names(checks=False) == [*PREPARE, *UNDO, *LIST_ALL, RECREATE, *LIST_ALL, RECREATE]
    assert (await result_of(client, workflow_id))["phase"] == "COMPENSATED"


async def test_an_esim_order_cancelled_without_its_details_is_owed_on_undo(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    """Airalo's listing missed an order (its pages shift while others cancel), the cancel
    call cancelled it all the same: on undo there is nothing to re-create it from. The
    churn must not end COMPENSATED as if it were back; it is owed to an operator."""
    listed, missed = fakes.add_future_order(in_days(6)), fakes.add_future_order(in_days(7))

    every_page = fakes.default(LIST)

    def listing_that_misses_one(request: Any) -> Any:
        listing = every_page(request)
        return listing.model_copy(
            update={"orders": [o for o in listing.orders if o.request_id != missed]}
        )

    fakes.always(LIST, listing_that_misses_one)  # every listing (a saga lists again)
    workflow_id = await start(
        client, settings, fakes, uid, in_days(3), [], airalo={"requestIds": [listed, missed]}
    )
    waiting = await wait_for_phase(client, workflow_id, "WAITING")
    assert {o["outcome"] for o in waiting["airalo"]["outcomes"]} == {"CANCELLED"}

    state = await sagas.revoke(client, workflow_id, "customer stayed")

    assert state["phase"] == "NEEDS_ATTENTION"
    assert [(p["part"], p["kind"]) for p in state["pendingActions"]] == [("airalo", "undo")]
    assert missed in state["pendingActions"][0]["error"]
    assert [c.order.request_id for c in fakes.args(RECREATE)] == [listed]
    assert sorted(state["undoneParts"]) == ["rebilly", "stn"]
    handled = await sagas.resolve(
        client, workflow_id, ResolveAction.MARK_HANDLED, f"re-ordered {missed} by hand"
    )
    assert handled["phase"] == "COMPENSATED"
    await record_history(
        client.get_workflow_handle(workflow_id), "customer_churn_unlisted_esim_owed"
    )


async def test_mark_handled_closes_the_saga_without_calling_anyone(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    workflow_id = await start(
        client, settings, fakes, uid, in_days(3), [in_days(6)], stn=None, rebilly=None
    )
    await wait_for_phase(client, workflow_id, "WAITING")
    fakes.on(RECREATE, reject("Airalo 422: package is sold out"))
    await sagas.revoke(client, workflow_id, None)
    calls_before = len(fakes.calls)

    state = await sagas.resolve(
        client, workflow_id, ResolveAction.MARK_HANDLED, "re-ordered by hand"
    )

    assert state["phase"] == "COMPENSATED" and state["undoneParts"] == ["airalo"]
    assert any("re-ordered by hand" in s["detail"] for s in state["steps"])
    assert len(fakes.calls) == calls_before


async def test_resolve_is_refused_unless_the_saga_needs_attention(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    workflow_id = await start(client, settings, fakes, uid, in_days(3), [in_days(6)])
    await wait_for_phase(client, workflow_id, "WAITING")

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await sagas.resolve(client, workflow_id, ResolveAction.RETRY, None)

    assert "nothing to resolve: the saga is WAITING" in str(refused.value.cause)
    assert fakes.names(checks=False) == PREPARE


async def test_failed_confirmation_after_the_pivot_needs_attention_then_completes(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    # The draft is accepted; confirming it after the line is gone is refused once.
    fakes.on(
        CONFIRM_BILLING,
        fakes.default(DRAFT_BILLING),
        reject("Rebilly 409: order is locked by a running invoice"),
    )
    # ~1 s of wall clock: billing is confirmed only after the date and the pivot.
    workflow_id = await start(client, settings, fakes, uid, soon(), [in_days(3)])

    attention = await wait_for_phase(client, workflow_id, "NEEDS_ATTENTION")

    assert [(p["part"], p["kind"]) for p in attention["pendingActions"]] == [("rebilly", "finish")]
    assert "the line is terminated" in attention["lastError"]
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await sagas.revoke(client, workflow_id, None)  # past the pivot: nothing to undo
    assert "cannot revoke" in str(refused.value.cause)
    resolved = await sagas.resolve(client, workflow_id, ResolveAction.RETRY, "invoice paid")
    assert resolved["phase"] == "COMPLETED" and resolved["rebilly"]["status"] == "completed"
    assert fakes.names(checks=False) == [
        *PREPARE,
        POLL_LINE,
        CONFIRM_BILLING,
        CONFIRM_BILLING,
        POLL_BILLING,
    ]
    assert CANCEL_LINE not in fakes.names(checks=False) and DELETE_DRAFT not in fakes.names(
        checks=False
    )


async def test_reschedule_is_refused_when_an_esim_order_would_change_sides(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    workflow_id = await start(client, settings, fakes, uid, in_days(3), [in_days(10)])
    waiting = await wait_for_phase(client, workflow_id, "WAITING")

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await sagas.reschedule(client, workflow_id, in_days(12))
    assert "fall between the old and the new date" in str(refused.value.cause)
    assert fakes.names(checks=False) == PREPARE

    new_date = in_days(4)
    state = await sagas.reschedule(client, workflow_id, new_date)

    assert state["phase"] == "WAITING" and datetime.fromisoformat(state["wishDate"]) == new_date
    # The line is resubmitted for the new date; the billing draft is updated in place.
    assert fakes.names(checks=False) == [*PREPARE, CANCEL_LINE, SUBMIT, DRAFT_BILLING]
    assert fakes.args(CANCEL_LINE)[0].activation_id == waiting["stn"]["activationId"]
    assert fakes.args(SUBMIT)[1].wish_date == new_date
    old, new = fakes.args(DRAFT_BILLING)
    assert new.cancellation_id == old.cancellation_id and new.body.churn_time == new_date
    assert new.body.status == RebillyStatus.DRAFT


async def test_cancellation_during_the_esim_step_undoes_exactly_what_was_cancelled(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    """11 orders: the first batch's call is in flight when the saga is cancelled. Its
    answer counts (10 re-created), the second batch is never sent; the line is undone
    first, then the eSIMs and the billing draft."""
    in_flight = Gate()
    fakes.on(CANCEL_ESIMS, in_flight.hold(fakes.default(CANCEL_ESIMS)))
    due = [in_days(6) + timedelta(minutes=i) for i in range(11)]
    workflow_id = await start(client, settings, fakes, uid, in_days(3), due)
    await in_flight.entered.wait()
    handle = client.get_workflow_handle(workflow_id)

    await sagas.cancel(client, workflow_id)
    await wait_for_phase(client, workflow_id, "COMPENSATING")
    in_flight.open()

    with pytest.raises(WorkflowFailureError):
        await handle.result()
    final = await status_of(client, workflow_id)
    assert final["phase"] == "COMPENSATED" and final["cause"] == "workflow cancelled"
    assert fakes.names(checks=False) == [
        *PREPARE,
        CANCEL_LINE,
        *LIST_ALL,
        *[RECREATE] * 10,
        DELETE_DRAFT,
    ]
    (sent,) = fakes.args(CANCEL_ESIMS)
    assert [create.order.request_id for create in fakes.args(RECREATE)] == sent.request_ids
    outcomes = [o["outcome"] for o in final["airalo"]["outcomes"]]
    assert sorted(outcomes) == ["CANCELLED"] * 10 + ["KEPT"]


async def test_a_billing_cancellation_rebilly_completed_is_not_claimed_undone(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    """Rebilly answers a reactivation of a completed cancellation "already completed":
    the order churned and stays churned. OrderCancellation reports that as too late;
    the churn used to record it as ``billing_undone`` and end COMPENSATED, claiming an
    undo that never happened. Now it says so: the billing undo is owed (patch
    ``churn-completed-billing-not-undone``; pre-patch history kept)."""

    def confirmed_at_rebilly(put: PutCancellation) -> PutResult:
        # The merchant confirmed the draft in Rebilly's dashboard before the PUT's
        # answer came back; Rebilly completes it at its churn time, the churn date.
        seen = Cancellation(
            id=put.cancellation_id,
            order_id=put.body.order_id,
            status=RebillyStatus.CONFIRMED,
            churn_time=put.body.churn_time,
        )
        fakes.cancellations[seen.id] = seen.model_copy(update={"status": RebillyStatus.COMPLETED})
        return PutResult(cancellation=seen, created=False, recovered=True, attempt=2)

    fakes.on(DRAFT_BILLING, confirmed_at_rebilly)
    fakes.stn_outcome, fakes.stn_message = "ERROR", "number is ported out"
    # ~1 s of wall clock: sTN is only polled (and answers ERROR) after the churn date.
    workflow_id = await start(client, settings, fakes, uid, soon(), [in_days(3)])

    state = await wait_for_phase(client, workflow_id, "NEEDS_ATTENTION")

    assert [(p["part"], p["kind"]) for p in state["pendingActions"]] == [("rebilly", "undo")]
    assert "already completed" in state["pendingActions"][0]["error"]
    assert sorted(state["undoneParts"]) == ["airalo", "stn"]
    assert "billing_undone" not in [s["step"] for s in state["steps"]]
    assert fakes.args(REACTIVATE)[0].cancellation_id == state["rebilly"]["cancellationId"]
    handled = await sagas.resolve(
        client, workflow_id, ResolveAction.MARK_HANDLED, "credited the customer by hand"
    )
    assert handled["phase"] == "COMPENSATED"
    await record_history(
        client.get_workflow_handle(workflow_id), "customer_churn_billing_already_completed"
    )
