"""LineTermination's logic with sTN mocked: submit, timer, poll, revoke, reschedule, undo."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.exceptions import CancelledError
from temporalio.worker import Worker

from config.settings import OrchestratorSettings
from domain.common import RevokeRequest, SagaKind
from domain.stn import CancelTermination, StnActivity, SubmitTermination, TerminationRequest
from starter import sagas
from tests.fast.fakes import FakeProviders, Gate, reject
from tests.fast.polling import wait_for_phase
from tests.helpers import result_of, status_of

SUBMIT = StnActivity.SUBMIT_TERMINATION
POLL = StnActivity.AWAIT_ACTIVATION_FINAL
CANCEL = StnActivity.CANCEL_TERMINATION


async def start(client: Client, settings: OrchestratorSettings, uid: str, **fields: Any) -> str:
    request = TerminationRequest.model_validate({"subscriptionId": f"SUB-{uid}", **fields})
    started = await sagas.start(client, SagaKind.LINE_TERMINATION, request, settings)
    return started.workflow_id


def in_days(days: float) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


async def test_submit_waits_for_the_wish_date_then_polls_to_completed(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    # Waits ~1 s of wall clock: the durable timer until the wish date is what is tested.
    wish = datetime.now(UTC) + timedelta(seconds=1)
    workflow_id = await start(client, settings, uid, wishDate=wish)

    final = await result_of(client, workflow_id)

    assert final["phase"] == "COMPLETED" and final["activationStatus"] == "DONE"
    assert fakes.names(checks=False) == [SUBMIT, POLL]
    submitted: SubmitTermination = fakes.args(SUBMIT)[0]
    assert submitted.wish_date == wish and submitted.subscription_id == f"SUB-{uid}"
    assert fakes.calls[1].at >= wish  # no poll before the wish date
    steps = [s["step"] for s in final["steps"]]
    assert steps == ["received", "submitting", "submitted", "waiting", "polling", "completed"]


async def test_stn_error_fails_with_its_message_and_undoes_nothing(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    fakes.stn_outcome, fakes.stn_message = "ERROR", "SIM is blocked by the operator"
    workflow_id = await start(client, settings, uid)

    final = await result_of(client, workflow_id)

    assert final["phase"] == "FAILED" and final["activationStatus"] == "ERROR"
    assert "SIM is blocked by the operator" in final["lastError"]
    assert fakes.names(checks=False) == [SUBMIT, POLL]


async def test_rejected_submit_fails_once_without_polling(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    fakes.on(SUBMIT, reject("sTN 403: subscription belongs to another reseller"))
    workflow_id = await start(client, settings, uid)

    final = await result_of(client, workflow_id)

    assert final["phase"] == "FAILED"
    assert "belongs to another reseller" in final["lastError"]
    assert fakes.names(checks=False) == [SUBMIT]  # a rejection is never retried


async def test_revoke_while_waiting_cancels_the_activation(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    workflow_id = await start(client, settings, uid, wishDate=in_days(3))
    waiting = await wait_for_phase(client, workflow_id, "WAITING")

    state = await sagas.revoke(client, workflow_id, "customer stayed")

    assert state["phase"] == "REVOKED"
    assert fakes.names(checks=False) == [SUBMIT, CANCEL]
    cancel: CancelTermination = fakes.args(CANCEL)[0]
    assert cancel.activation_id == waiting["activationId"] and cancel.note == "customer stayed"
    assert (await result_of(client, workflow_id))["phase"] == "REVOKED"


async def test_revoke_refused_by_stn_keeps_the_saga_waiting(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    workflow_id = await start(client, settings, uid, wishDate=in_days(3))
    await wait_for_phase(client, workflow_id, "WAITING")
    fakes.on(CANCEL, reject("sTN 400: activation is being executed"))

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await sagas.revoke(client, workflow_id, "too late?")

    assert "activation is being executed" in str(refused.value.cause)
    state = await status_of(client, workflow_id)
    assert state["phase"] == "WAITING" and "being executed" in state["lastError"]
    assert [s["step"] for s in state["steps"]][-3:] == ["revoking", "revoke_refused", "waiting"]
    # Refused once, not stuck: the next revoke goes through.
    assert (await sagas.revoke(client, workflow_id, None))["phase"] == "REVOKED"
    assert fakes.names(checks=False) == [SUBMIT, CANCEL, CANCEL]


async def test_revoke_while_polling_stops_the_poll_and_cancels(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    never = Gate()  # sTN stays BUSY: the poll never returns by itself
    fakes.on(POLL, never.hold(fakes.default(POLL)))
    workflow_id = await start(client, settings, uid)
    await wait_for_phase(client, workflow_id, "POLLING")
    await never.entered.wait()

    state = await sagas.revoke(client, workflow_id, None)

    assert state["phase"] == "REVOKED"
    assert fakes.names(checks=False) == [SUBMIT, POLL, CANCEL]


async def test_reschedule_cancels_and_resubmits_at_the_new_date(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    workflow_id = await start(client, settings, uid, wishDate=in_days(7))
    first = await wait_for_phase(client, workflow_id, "WAITING")
    # Waits ~1 s of wall clock: the new timer must fire at the new date.
    new_date = datetime.now(UTC) + timedelta(seconds=1)

    state = await sagas.reschedule(client, workflow_id, new_date)

    # Waiting for the new date, or, on a loaded machine, past it already when the answer
    # came (a matter of timing); that the poll came after the new date is checked below.
    assert state["phase"] in ("WAITING", "POLLING") and state["submissions"] == 2
    assert datetime.fromisoformat(state["wishDate"]) == new_date
    assert state["activationId"] != first["activationId"]
    final = await result_of(client, workflow_id)
    assert final["phase"] == "COMPLETED"
    assert fakes.names(checks=False) == [SUBMIT, CANCEL, SUBMIT, POLL]
    assert fakes.args(CANCEL)[0].activation_id == first["activationId"]
    submits: list[SubmitTermination] = fakes.args(SUBMIT)
    assert submits[1].wish_date == new_date
    assert submits[0].reference_number != submits[1].reference_number
    assert fakes.calls[-1].at >= new_date


async def test_validators_refuse_a_past_date_without_touching_stn(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    workflow_id = await start(client, settings, uid, wishDate=in_days(1))
    await wait_for_phase(client, workflow_id, "WAITING")
    handle = client.get_workflow_handle(workflow_id)

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update("reschedule", {"wishDate": in_days(-1 / 24).isoformat()})

    assert "in the past" in str(refused.value.cause)
    state = await status_of(client, workflow_id)
    assert state["phase"] == "WAITING" and state["submissions"] == 1
    assert fakes.names(checks=False) == [SUBMIT]
    history = await handle.fetch_history()
    # A validator's refusal never reaches the history.
    kinds = [event.event_type for event in history.events]
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED not in kinds


async def test_revoke_refused_once_completed(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    workflow_id = await start(client, settings, uid)
    await result_of(client, workflow_id)

    # The run is closed: refused before any update reaches Temporal.
    with pytest.raises(sagas.SagaClosed, match="closed \\(COMPLETED\\)"):
        await sagas.revoke(client, workflow_id, None)

    assert fakes.names(checks=False) == [SUBMIT, POLL]


async def test_workflow_cancellation_undoes_the_termination(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    workflow_id = await start(client, settings, uid, wishDate=in_days(3))
    waiting = await wait_for_phase(client, workflow_id, "WAITING")

    await sagas.cancel(client, workflow_id)

    with pytest.raises(WorkflowFailureError) as failure:
        await result_of(client, workflow_id)
    assert isinstance(failure.value.cause, CancelledError)
    final = await status_of(client, workflow_id)
    assert final["phase"] == "REVOKED"
    assert fakes.names(checks=False) == [SUBMIT, CANCEL]
    cancel: CancelTermination = fakes.args(CANCEL)[0]
    assert cancel.activation_id == waiting["activationId"] and cancel.note == "workflow cancelled"


async def test_cancellation_during_submit_waits_for_it_then_undoes_it(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    """The shielded submit: sTN answers after the cancellation; what it made is undone."""
    slow = Gate()
    fakes.on(SUBMIT, slow.hold(fakes.default(SUBMIT)))
    workflow_id = await start(client, settings, uid)
    await slow.entered.wait()

    await sagas.cancel(client, workflow_id)
    await wait_for_phase(client, workflow_id, "COMPENSATING")
    slow.open()

    with pytest.raises(WorkflowFailureError):
        await result_of(client, workflow_id)
    final = await status_of(client, workflow_id)
    assert final["phase"] == "REVOKED"
    assert fakes.names(checks=False) == [SUBMIT, CANCEL]
    made = [i for i in fakes.activations if i not in fakes.stn_cancellations]
    assert [cancel.activation_id for cancel in fakes.args(CANCEL)] == made  # exactly what it made


async def test_a_second_request_is_refused_while_one_is_being_applied(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    slow = Gate()
    fakes.on(CANCEL, slow.hold(fakes.default(CANCEL)))
    workflow_id = await start(client, settings, uid, wishDate=in_days(3))
    await wait_for_phase(client, workflow_id, "WAITING")
    handle = client.get_workflow_handle(workflow_id)
    revoke = await handle.start_update(
        "revoke", RevokeRequest(reason="first"), wait_for_stage=WorkflowUpdateStage.ACCEPTED
    )
    await slow.entered.wait()

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await sagas.reschedule(client, workflow_id, in_days(5))

    assert "another request is being applied" in str(refused.value.cause)
    slow.open()
    state: dict[str, Any] = await revoke.result()
    assert state["phase"] == "REVOKED" and state["submissions"] == 1
    assert fakes.names(checks=False) == [SUBMIT, CANCEL]
