"""FutureOrderCancellation's logic with Airalo mocked: batches, 422s, cut-offs, revoke, cancel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateStage
from temporalio.worker import Worker

from config.settings import OrchestratorSettings
from domain.airalo import (
    LISTED_STATUSES,
    AiraloActivity,
    CancelFutureOrders,
    CancelFutureOrdersResult,
    CancelRejection,
    FutureOrderCancellationRequest,
    RejectionKind,
)
from domain.common import NoticeEvent, Provider, ProviderNotice, RevokeRequest, SagaKind, SagaSignal
from starter import sagas
from tests.fast.fakes import FakeProviders, Gate, reject, request_id, unavailable
from tests.fast.polling import INTERVAL, wait_for_phase
from tests.helpers import eventually, record_history, result_of, status_of

# One page of one status a call: a lookup of orders the fake lists finds them on the
# first page of pending; the compensation's listing (by due date) reads every status.
LIST = AiraloActivity.LIST_FUTURE_ORDERS_PAGE
LIST_ALL = [LIST] * len(LISTED_STATUSES)
CANCEL = AiraloActivity.CANCEL_FUTURE_ORDERS
CREATE = AiraloActivity.CREATE_FUTURE_ORDER


async def start(
    client: Client, settings: OrchestratorSettings, ids: list[str], **fields: Any
) -> str:
    request = FutureOrderCancellationRequest.model_validate({"requestIds": ids, **fields})
    started = await sagas.start(client, SagaKind.FUTURE_ORDER_CANCELLATION, request, settings)
    return started.workflow_id


def in_days(days: float) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


def outcomes(state: dict[str, Any]) -> dict[str, str]:
    return {o["requestId"]: o["outcome"] for o in state["outcomes"]}


def sent(fakes: FakeProviders) -> list[list[str]]:
    return [call.request_ids for call in fakes.args(CANCEL)]


async def test_twenty_five_ids_take_three_calls_earliest_cutoff_first(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
) -> None:
    # Listed latest first: the saga must reorder by cut-off.
    ids = [fakes.add_future_order(in_days(3) + timedelta(hours=25 - i)) for i in range(25)]
    workflow_id = await start(client, settings, ids)

    final = await result_of(client, workflow_id)

    assert final["phase"] == "COMPLETED" and set(outcomes(final).values()) == {"CANCELLED"}
    assert fakes.names() == [LIST, CANCEL, CANCEL, CANCEL]
    assert [len(batch) for batch in sent(fakes)] == [10, 10, 5]
    assert [i for batch in sent(fakes) for i in batch] == list(reversed(ids))
    assert final["cancelCalls"] == 3 and final["lookups"] == 1


async def test_a_422_settles_the_named_ids_and_sends_the_rest_again_once(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
) -> None:
    kept, processed = fakes.add_future_order(in_days(4)), fakes.add_future_order(in_days(5))
    unknown = request_id()  # Airalo does not list it: its 422 says it does not exist

    def first_answer(call: CancelFutureOrders) -> CancelFutureOrdersResult:
        rejections = [
            CancelRejection(
                request_id=processed,
                kind=RejectionKind.ALREADY_PROCESSED,
                message=f"Request ID: {processed} is already processed",
            ),
            CancelRejection(
                request_id=unknown,
                kind=RejectionKind.NOT_FOUND,
                message=f"Request ID: {unknown} does not exist",
            ),
        ]
        return CancelFutureOrdersResult(request_ids=call.request_ids, rejections=rejections)

    fakes.on(CANCEL, first_answer)
    workflow_id = await start(client, settings, [kept, processed, unknown])

    final = await result_of(client, workflow_id)

    assert final["phase"] == "COMPLETED"
    assert outcomes(final) == {
        kept: "CANCELLED",
        processed: "ALREADY_PROCESSED",
        unknown: "NOT_FOUND",
    }
    assert sent(fakes) == [[kept, processed, unknown], [kept]]


async def test_an_order_past_its_cutoff_is_never_sent(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
) -> None:
    late = fakes.add_future_order(in_days(0.5))  # cut-off (24 h before) has passed
    fine = fakes.add_future_order(in_days(3))
    workflow_id = await start(client, settings, [late, fine])

    final = await result_of(client, workflow_id)

    assert outcomes(final) == {late: "MISSED_DEADLINE", fine: "CANCELLED"}
    assert sent(fakes) == [[fine]]


async def test_airalo_down_until_a_cutoff_misses_that_order_and_retries_the_other(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
) -> None:
    """The deadline race: a call is retried until the earliest cut-off among its orders,
    then that order is MISSED_DEADLINE and the other is sent again, alone."""
    # Waits ~2 s of wall clock: the call's deadline is a real cut-off passing (the
    # end-to-end twin needs up to a minute, Airalo's dates having minutes only).
    cutoff = datetime.now(UTC) + timedelta(seconds=2)
    urgent = fakes.add_future_order(cutoff + timedelta(hours=24), cutoff=cutoff)
    relaxed = fakes.add_future_order(in_days(3))
    airalo, down = fakes.default(CANCEL), unavailable("Airalo 503: service unavailable")

    def down_until_the_cutoff(call: CancelFutureOrders) -> CancelFutureOrdersResult:
        if datetime.now(UTC) < cutoff:
            down(call)  # raises, retryable
        if urgent in call.request_ids:  # what Airalo says after the cut-off
            late = CancelRejection(
                request_id=urgent,
                kind=RejectionKind.PAST_CUTOFF,
                message=f"Request ID: {urgent} cannot be cancelled within 24 hours",
            )
            return CancelFutureOrdersResult(request_ids=call.request_ids, rejections=[late])
        result: CancelFutureOrdersResult = airalo(call)
        return result

    fakes.always(CANCEL, down_until_the_cutoff)
    workflow_id = await start(client, settings, [urgent, relaxed])

    final = await result_of(client, workflow_id)

    assert final["phase"] == "COMPLETED"
    assert outcomes(final) == {urgent: "MISSED_DEADLINE", relaxed: "CANCELLED"}
    reason = next(o["reason"] for o in final["outcomes"] if o["requestId"] == urgent)
    assert "cut-off" in reason
    calls = fakes.args(CANCEL)
    assert calls[0].request_ids == [urgent, relaxed] and calls[-1].request_ids == [relaxed]
    assert urgent in fakes.future_orders and relaxed not in fakes.future_orders
    # Retried until the cut-off, not beyond (an attempt in flight may land just after it).
    sends = [c.at for c in fakes.calls if c.activity == CANCEL and urgent in c.arg.request_ids]
    assert len(sends) >= 2 and max(sends) < cutoff + timedelta(seconds=1)
    # ...and in its last retry interval the saga waits for the cut-off instead of
    # re-sending with ever shorter windows (that made some 20 calls in 0.9 s).
    assert len(sends) <= 4, [s.isoformat() for s in sends]
    await record_history(
        client.get_workflow_handle(workflow_id), "future_order_cancellation_missed_deadline"
    )


async def test_nothing_cancellable_fails_only_when_every_id_failed(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
) -> None:
    fakes.on(LIST, reject("Airalo 401: invalid client credentials"))
    ids = [fakes.add_future_order(in_days(3)) for _ in range(2)]
    workflow_id = await start(client, settings, ids)

    final = await result_of(client, workflow_id)

    assert final["phase"] == "FAILED" and "invalid client credentials" in final["lastError"]
    assert set(outcomes(final).values()) == {"FAILED"}
    assert fakes.names() == [LIST]


async def test_revoke_during_a_call_lets_its_answer_count_then_recreates(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
) -> None:
    """12 orders: the first batch's call is in flight when the revoke arrives; its answer
    counts (10 CANCELLED, then re-created), the second batch is never sent (KEPT)."""
    ids = [fakes.add_future_order(in_days(3) + timedelta(minutes=i)) for i in range(12)]
    in_flight = Gate()
    fakes.on(CANCEL, in_flight.hold(fakes.default(CANCEL)))
    workflow_id = await start(client, settings, ids)
    await in_flight.entered.wait()
    handle = client.get_workflow_handle(workflow_id)

    update = await handle.start_update(
        "revoke",
        RevokeRequest(reason="customer stayed"),
        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
    )
    await wait_for_phase(client, workflow_id, "REVOKING")
    in_flight.open()
    revoked: dict[str, Any] = await update.result()

    assert revoked["phase"] == "REVOKED"
    assert outcomes(revoked) == {
        **dict.fromkeys(ids[:10], "CANCELLED"),
        **dict.fromkeys(ids[10:], "KEPT"),
    }
    assert sent(fakes) == [ids[:10]]
    assert fakes.names() == [LIST, CANCEL, *LIST_ALL, *[CREATE] * 10]
    assert [create.order.request_id for create in fakes.args(CREATE)] == ids[:10]
    assert {r["originalRequestId"] for r in revoked["recreated"]} == set(ids[:10])
    assert all(r["requestId"] for r in revoked["recreated"])


async def test_an_order_airalo_will_not_recreate_stays_cancelled_and_says_so(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
) -> None:
    first, second = (fakes.add_future_order(in_days(3) + timedelta(minutes=i)) for i in range(2))
    in_flight = Gate()
    fakes.on(CANCEL, in_flight.hold(fakes.default(CANCEL)))
    fakes.on(CREATE, reject("Airalo 422: due_date must be at least two days ahead"))
    workflow_id = await start(client, settings, [first, second])
    await in_flight.entered.wait()
    handle = client.get_workflow_handle(workflow_id)

    update = await handle.start_update(
        "revoke", RevokeRequest(), wait_for_stage=WorkflowUpdateStage.ACCEPTED
    )
    in_flight.open()
    revoked: dict[str, Any] = await update.result()

    # Retrying cannot help, and nothing is left to steer: REVOKED, saying what stays.
    assert revoked["phase"] == "REVOKED"
    assert "1 cancelled order(s) could not be re-created" in revoked["lastError"]
    assert "two days ahead" in revoked["lastError"]
    assert "recreate_failed" in [s["step"] for s in revoked["steps"]]
    # One refusal does not stop the others.
    assert [create.order.request_id for create in fakes.args(CREATE)] == [first, second]
    assert [(r["originalRequestId"], bool(r["requestId"])) for r in revoked["recreated"]] == [
        (first, False),
        (second, True),
    ]
    reasons = {o["requestId"]: o["reason"] for o in revoked["outcomes"]}
    assert "could not re-create it" in reasons[first]


async def test_workflow_cancellation_keeps_what_was_cancelled_and_sends_nothing_more(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
) -> None:
    ids = [fakes.add_future_order(in_days(3) + timedelta(minutes=i)) for i in range(12)]
    in_flight = Gate()
    fakes.on(CANCEL, in_flight.hold(fakes.default(CANCEL)))
    workflow_id = await start(client, settings, ids)
    await in_flight.entered.wait()
    handle = client.get_workflow_handle(workflow_id)

    await sagas.cancel(client, workflow_id)

    async def call_cancel_requested() -> None:
        history = await handle.fetch_history()
        kinds = [event.event_type for event in history.events]
        assert EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED in kinds

    await eventually(call_cancel_requested, within=10, interval=INTERVAL)
    in_flight.open()
    with pytest.raises(WorkflowFailureError):
        await result_of(client, workflow_id)
    final = await status_of(client, workflow_id)
    assert final["phase"] == "REVOKED"
    # The answer of the call in flight still counts; nothing is re-created or sent after.
    assert outcomes(final) == {
        **dict.fromkeys(ids[:10], "CANCELLED"),
        **dict.fromkeys(ids[10:], "FAILED"),
    }
    assert fakes.names() == [LIST, CANCEL]


# -- provider notices (Airalo's webhook, routed to the saga) ----------------------------


def fired(request_id: str) -> ProviderNotice:
    return ProviderNotice(
        provider=Provider.AIRALO,
        event=NoticeEvent.AIRALO_FUTURE_ORDER_FIRED,
        subject=request_id,
        at=datetime.now(UTC),
    )


async def test_an_order_airalo_reports_fired_is_not_sent_and_says_it_fired(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
) -> None:
    early, other = fakes.add_future_order(in_days(3)), fakes.add_future_order(in_days(4))
    looking_up = Gate()
    fakes.on(LIST, looking_up.hold(fakes.default(LIST)))
    workflow_id = await start(client, settings, [early, other])
    await looking_up.entered.wait()
    handle = client.get_workflow_handle(workflow_id)

    # Delivered twice, as webhooks may be: recorded once.
    await handle.signal(SagaSignal.PROVIDER_NOTICE, fired(early))
    await handle.signal(SagaSignal.PROVIDER_NOTICE, fired(early))
    looking_up.open()
    final = await result_of(client, workflow_id)

    assert outcomes(final) == {early: "ALREADY_PROCESSED", other: "CANCELLED"}
    reason = next(o["reason"] for o in final["outcomes"] if o["requestId"] == early)
    assert "fired" in reason and "webhook" in reason
    assert [call.request_ids for call in fakes.args(CANCEL)] == [[other]]
    assert [n["subject"] for n in final["notices"]] == [early]
    assert sum(s["step"] == "provider_notice" for s in final["steps"]) == 1


async def test_a_notice_for_an_order_the_saga_does_not_hold_changes_nothing(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
) -> None:
    mine = fakes.add_future_order(in_days(3))
    looking_up = Gate()
    fakes.on(LIST, looking_up.hold(fakes.default(LIST)))
    workflow_id = await start(client, settings, [mine])
    await looking_up.entered.wait()

    await client.get_workflow_handle(workflow_id).signal(
        SagaSignal.PROVIDER_NOTICE, fired(request_id())
    )
    looking_up.open()
    final = await result_of(client, workflow_id)

    assert outcomes(final) == {mine: "CANCELLED"}
    assert len(final["notices"]) == 1  # shown, but about nothing it holds
