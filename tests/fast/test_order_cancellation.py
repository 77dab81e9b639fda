"""OrderCancellation's logic with Rebilly mocked: draft → confirm, revoke, reschedule, undo."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.worker import Worker

from config.settings import OrchestratorSettings
from domain.common import NoticeEvent, Provider, ProviderNotice, SagaKind, SagaSignal
from domain.rebilly import (
    OrderCancellationRequest,
    PutCancellation,
    Reactivated,
    ReactivateOrder,
    ReactivationOutcome,
    RebillyActivity,
    RebillyStatus,
)
from starter import sagas
from tests.fast.fakes import FakeProviders, reject
from tests.fast.polling import wait_for_phase
from tests.helpers import eventually, result_of, status_of

PUT = RebillyActivity.PUT_CANCELLATION
POLL = RebillyActivity.AWAIT_CANCELLATION_COMPLETED
REACTIVATE = RebillyActivity.REACTIVATE_ORDER
DELETE = RebillyActivity.DELETE_DRAFT


async def start(client: Client, settings: OrchestratorSettings, uid: str, **fields: Any) -> str:
    request = OrderCancellationRequest.model_validate({"orderId": f"ORD-{uid}", **fields})
    started = await sagas.start(client, SagaKind.ORDER_CANCELLATION, request, settings)
    return started.workflow_id


def in_days(days: float) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0)


def statuses(fakes: FakeProviders) -> list[RebillyStatus]:
    return [put.body.status for put in fakes.args(PUT)]


async def test_churn_now_puts_a_confirmed_cancellation_and_polls_to_completed(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    workflow_id = await start(client, settings, uid, reason="too-expensive")

    final = await result_of(client, workflow_id)

    assert final["phase"] == "COMPLETED" and final["rebillyStatus"] == "completed"
    assert fakes.names() == [PUT, POLL]
    put: PutCancellation = fakes.args(PUT)[0]
    assert put.cancellation_id == final["cancellationId"]
    assert put.body.status == RebillyStatus.CONFIRMED and put.body.reason == "too-expensive"


async def test_draft_shows_the_preview_and_waits_for_confirm(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    workflow_id = await start(client, settings, uid, draft=True, prorated=True)
    draft = await wait_for_phase(client, workflow_id, "WAITING")
    assert draft["awaitingConfirmation"] and draft["rebillyStatus"] == "draft"
    assert draft["lineItemSubtotal"] == {"amount": -12.5, "currency": "EUR"}
    assert fakes.names() == [PUT]  # a draft waits for the operator, not for a timer

    confirmed = await sagas.confirm(client, workflow_id)

    assert confirmed["rebillyStatus"] in ("confirmed", "completed")
    final = await result_of(client, workflow_id)
    assert final["phase"] == "COMPLETED"
    assert fakes.names() == [PUT, PUT, POLL]
    assert statuses(fakes) == [RebillyStatus.DRAFT, RebillyStatus.CONFIRMED]
    first, second = fakes.args(PUT)
    assert first.cancellation_id == second.cancellation_id  # the draft itself is confirmed


async def test_confirm_is_refused_unless_a_draft_waits(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    workflow_id = await start(client, settings, uid, churnTime=in_days(3))
    await wait_for_phase(client, workflow_id, "WAITING")

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await sagas.confirm(client, workflow_id)

    assert "only a draft can be confirmed" in str(refused.value.cause)
    assert fakes.names() == [PUT]


async def test_revoke_of_a_confirmed_cancellation_reactivates_the_order(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    workflow_id = await start(client, settings, uid, churnTime=in_days(3))
    waiting = await wait_for_phase(client, workflow_id, "WAITING")

    state = await sagas.revoke(client, workflow_id, "customer stayed")

    assert state["phase"] == "REVOKED" and state["rebillyStatus"] == "revoked"
    assert fakes.names() == [PUT, REACTIVATE]
    reactivation: ReactivateOrder = fakes.args(REACTIVATE)[0]
    assert reactivation.cancellation_id == waiting["cancellationId"]
    assert reactivation.order_id == f"ORD-{uid}" and reactivation.description == "customer stayed"


async def test_revoke_of_a_draft_deletes_it(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    workflow_id = await start(client, settings, uid, draft=True)
    draft = await wait_for_phase(client, workflow_id, "WAITING")

    state = await sagas.revoke(client, workflow_id, "just looking")

    assert state["phase"] == "REVOKED" and state["rebillyStatus"] is None
    assert fakes.names() == [PUT, DELETE]
    assert fakes.args(DELETE)[0].cancellation_id == draft["cancellationId"]


async def test_revoke_refused_once_rebilly_completed_it(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    """Rebilly completed the cancellation before the saga's timer fired: too late."""
    workflow_id = await start(client, settings, uid, churnTime=in_days(3))
    await wait_for_phase(client, workflow_id, "WAITING")

    def completed_already(request: ReactivateOrder) -> Reactivated:
        done = fakes.cancellations[request.cancellation_id].model_copy(
            update={"status": RebillyStatus.COMPLETED}
        )
        return Reactivated(outcome=ReactivationOutcome.ALREADY_COMPLETED, cancellation=done)

    fakes.on(REACTIVATE, completed_already)

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await sagas.revoke(client, workflow_id, None)

    assert "cannot revoke: Rebilly already completed" in str(refused.value.cause)
    final = await result_of(client, workflow_id)
    assert final["phase"] == "COMPLETED" and final["rebillyStatus"] == "completed"
    assert fakes.names() == [PUT, REACTIVATE]


async def test_reschedule_revokes_and_makes_a_new_cancellation(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    workflow_id = await start(client, settings, uid, churnTime=in_days(3))
    first = await wait_for_phase(client, workflow_id, "WAITING")
    new_time = in_days(5)

    state = await sagas.reschedule(client, workflow_id, new_time)

    assert state["phase"] == "WAITING" and state["submissions"] == 2
    assert datetime.fromisoformat(state["churnTime"]) == new_time
    assert fakes.names() == [PUT, REACTIVATE, PUT]
    old, new = fakes.args(PUT)
    assert fakes.args(REACTIVATE)[0].cancellation_id == old.cancellation_id
    assert new.cancellation_id != old.cancellation_id == first["cancellationId"]
    assert new.body.churn_time == new_time and new.body.churn_time_policy is None


async def test_rescheduling_a_draft_updates_it_in_place(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    workflow_id = await start(client, settings, uid, churnTimePolicy="at-next-renewal", draft=True)
    await wait_for_phase(client, workflow_id, "WAITING")
    new_time = in_days(2)

    state = await sagas.reschedule(client, workflow_id, new_time)

    assert state["awaitingConfirmation"] and state["submissions"] == 1
    assert fakes.names() == [PUT, PUT]
    old, new = fakes.args(PUT)
    assert new.cancellation_id == old.cancellation_id
    assert statuses(fakes) == [RebillyStatus.DRAFT, RebillyStatus.DRAFT]
    assert new.body.churn_time == new_time and new.body.churn_time_policy is None


async def test_rejected_put_fails_with_rebillys_reason(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    fakes.on(PUT, reject("Rebilly 422: orderId: order is already canceled"))
    workflow_id = await start(client, settings, uid)

    final = await result_of(client, workflow_id)

    assert final["phase"] == "FAILED" and "already canceled" in final["lastError"]
    assert fakes.names() == [PUT]


async def test_workflow_cancellation_reactivates_the_order(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    workflow_id = await start(client, settings, uid, churnTime=in_days(3))
    await wait_for_phase(client, workflow_id, "WAITING")

    await sagas.cancel(client, workflow_id)

    with pytest.raises(WorkflowFailureError):
        await result_of(client, workflow_id)
    final = await status_of(client, workflow_id)
    assert final["phase"] == "REVOKED" and final["rebillyStatus"] == "revoked"
    assert fakes.names() == [PUT, REACTIVATE]
    assert fakes.args(REACTIVATE)[0].description == "workflow cancelled"


async def test_a_reactivation_rebilly_reports_while_waiting_is_shown_not_acted_on(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    workflow_id = await start(client, settings, uid, churnTime=in_days(30))
    await wait_for_phase(client, workflow_id, "WAITING")
    calls_before = len(fakes.calls)
    notice = ProviderNotice(
        provider=Provider.REBILLY,
        event=NoticeEvent.REBILLY_SUBSCRIPTION_REACTIVATED,
        subject=f"ORD-{uid}",
    )

    handle = client.get_workflow_handle(workflow_id)
    for _ in range(2):  # "may be delivered multiple times"
        await handle.signal(SagaSignal.PROVIDER_NOTICE, notice)

    async def shown() -> dict[str, Any]:
        state = await status_of(client, workflow_id)
        assert [n["event"] for n in state["notices"]] == ["subscription-reactivated"]
        return state

    state = await eventually(shown)
    assert state["phase"] == "WAITING" and len(fakes.calls) == calls_before
    assert sum(s["step"] == "provider_notice" for s in state["steps"]) == 1
    await sagas.revoke(client, workflow_id, "test over")
