"""Which outcome events each saga emits, and when (README "Outcome events"), over the
real loop: the publish local activity, the store, the delivery workflows and the
sandbox's subscriber; every provider activity faked. Jeopardy horizons are shortened
in-process (the worker shares ``domain/`` with the test), so no test waits for hours."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities.outcomes import SubscriptionDirectory
from config.settings import OrchestratorSettings, WorkerSettings
from domain import outcomes as rules
from domain import search_attributes as sa
from domain.airalo import AiraloActivity, FutureOrderCancellationRequest
from domain.churn import ResolveAction
from domain.common import SagaKind
from domain.outcomes import JeopardyCause, Subscription
from domain.stn import StnActivity, TerminationRequest
from sandbox.testing import SandboxAdmin
from starter import sagas
from tests.fast import test_customer_churn as churn
from tests.fast.fakes import FakeProviders, Gate, reject
from tests.fast.polling import wait_for_phase
from tests.helpers import eventually, record_history, result_of, status_of
from tests.outcomes import subscribe, wait_for_types
from worker import ProviderClients, build_worker
from workflows import patches

POLL_LINE = StnActivity.AWAIT_ACTIVATION_FINAL
CANCEL_ESIMS = AiraloActivity.CANCEL_FUTURE_ORDERS


def in_days(days: float) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0)


async def terminate(
    client: Client, settings: OrchestratorSettings, uid: str, wish: datetime | None = None
) -> str:
    request = TerminationRequest(subscription_id=f"SUB-{uid}", wish_date=wish, customer_id="C-1")
    started = await sagas.start(client, SagaKind.LINE_TERMINATION, request, settings)
    return started.workflow_id


def types_of(received: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in received]


async def test_a_termination_tells_scheduled_rescheduled_revoked_in_sequence(
    client: Client,
    fake_worker: Worker,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    await subscribe(client, settings.task_queue, sandbox_admin, f"fast-lt-{uid}")
    wish, moved = in_days(3), in_days(4)
    workflow_id = await terminate(client, settings, uid, wish)
    await wait_for_phase(client, workflow_id, "WAITING")
    await sagas.reschedule(client, workflow_id, moved)
    await sagas.revoke(client, workflow_id, "customer stays")

    received = await wait_for_types(sandbox_admin, f"fast-lt-{uid}", 3)

    assert types_of(received) == ["saga.scheduled", "saga.rescheduled", "saga.revoked"]
    assert [event["data"]["sequence"] for event in received] == [1, 2, 3]
    scheduled, rescheduled, revoked = received
    assert datetime.fromisoformat(scheduled["data"]["revocableUntil"]) == wish
    assert datetime.fromisoformat(rescheduled["data"]["revocableUntil"]) == moved
    assert revoked["data"]["phase"] == "REVOKED"
    for event in received:
        assert event["specversion"] == "1.0" and event["source"] == "/v1/sagas"
        assert event["subject"] == workflow_id
        assert event["data"]["workflowId"] == workflow_id
        assert event["data"]["kind"] == "LINE_TERMINATION"
    assert len({event["id"] for event in received}) == 3


async def test_an_immediate_termination_tells_only_its_outcome(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    """Nothing is held for a date: no saga.scheduled, only how it ended."""
    await subscribe(client, settings.task_queue, sandbox_admin, f"fast-ok-{uid}")
    await subscribe(client, settings.task_queue, sandbox_admin, f"fast-ko-{uid}")
    done = await terminate(client, settings, f"{uid}-ok")
    assert (await result_of(client, done))["phase"] == "COMPLETED"
    fakes.stn_outcome, fakes.stn_message = "ERROR", "number is ported out"
    failed = await terminate(client, settings, f"{uid}-ko")
    assert (await result_of(client, failed))["phase"] == "FAILED"

    # Both subscriptions receive both sagas' events.
    received = await wait_for_types(sandbox_admin, f"fast-ok-{uid}", 2)

    assert {(event["subject"], event["type"]) for event in received} == {
        (done, "saga.completed"),
        (failed, "saga.failed"),
    }
    failure = next(event for event in received if event["type"] == "saga.failed")
    assert "number is ported out" in failure["data"]["lastError"]


async def test_an_event_that_cannot_be_published_never_fails_its_saga(
    client: Client,
    fake_worker: Worker,
    settings: OrchestratorSettings,
    monkeypatch: pytest.MonkeyPatch,
    uid: str,
) -> None:
    """The subscription store unreadable for good: the publish local activity fails, and
    the saga still COMPLETES (a failed local activity raises its own ApplicationError, not
    an ActivityError; caught since patch ``outcome-publish-failure-counted``)."""

    async def unreadable(*_: object) -> list[Subscription]:
        raise ApplicationError("subscription store unreadable", non_retryable=True)

    monkeypatch.setattr(SubscriptionDirectory, "subscriptions", unreadable)
    done = await terminate(client, settings, uid)

    assert (await result_of(client, done))["phase"] == "COMPLETED"
    await record_history(client.get_workflow_handle(done), "line_termination_publish_failed")
    history = await client.get_workflow_handle(done).fetch_history()
    patched = [
        event.marker_recorded_event_attributes.details["patch-data"].payloads[0].data
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and event.marker_recorded_event_attributes.marker_name == "core_patch"
    ]
    assert any(patches.PUBLISH_FAILURE_COUNTED.encode() in data for data in patched)
    assert history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED


async def test_a_churn_tells_scheduled_its_point_of_no_return_then_completed(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    await subscribe(client, settings.task_queue, sandbox_admin, f"fast-churn-{uid}")
    # ~1 s of wall clock: the churn waits for its date before the pivot.
    workflow_id = await churn.start(client, settings, fakes, uid, churn.soon(), [in_days(3)])
    assert (await result_of(client, workflow_id))["phase"] == "COMPLETED"

    received = await wait_for_types(sandbox_admin, f"fast-churn-{uid}", 3)

    assert types_of(received) == [
        "saga.scheduled",
        "saga.point_of_no_return",
        "saga.completed",
    ]
    assert received[0]["data"]["kind"] == "CUSTOMER_CHURN"
    assert received[0]["data"]["customerId"] == f"C-{uid}"


async def test_a_churn_stn_refuses_tells_compensated(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    await subscribe(client, settings.task_queue, sandbox_admin, f"fast-comp-{uid}")
    fakes.stn_outcome, fakes.stn_message = "ERROR", "number is ported out"
    workflow_id = await churn.start(client, settings, fakes, uid, churn.soon(), [in_days(3)])
    assert (await result_of(client, workflow_id))["phase"] == "COMPENSATED"

    received = await wait_for_types(sandbox_admin, f"fast-comp-{uid}", 2)

    assert types_of(received) == ["saga.scheduled", "saga.compensated"]


async def test_needs_attention_is_told_and_in_jeopardy_after_its_horizon(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An eSIM order that cannot be re-created: NEEDS_ATTENTION, then, unanswered past
    its (shortened) horizon, saga.jeopardy once, shown in the status and the
    ``SagaJeopardy`` search attribute; mark-handled ends it COMPENSATED."""
    monkeypatch.setattr(rules, "NEEDS_ATTENTION_HORIZON", timedelta(seconds=1))
    endpoint = f"fast-attn-{uid}"
    await subscribe(client, settings.task_queue, sandbox_admin, endpoint)
    fakes.on(churn.RECREATE, reject("Airalo 422: package is sold out"))
    workflow_id = await churn.start(client, settings, fakes, uid, in_days(3), [in_days(5)])
    await wait_for_phase(client, workflow_id, "WAITING")
    await sagas.revoke(client, workflow_id, "customer stays")

    received = await wait_for_types(sandbox_admin, endpoint, 3)

    assert types_of(received) == ["saga.scheduled", "saga.needs_attention", "saga.jeopardy"]
    assert received[2]["data"]["jeopardyCause"] == JeopardyCause.NEEDS_ATTENTION
    state = await status_of(client, workflow_id)
    assert [j["cause"] for j in state["jeopardy"]] == ["needs_attention"]
    assert "jeopardy" in [step["step"] for step in state["steps"]]

    async def flagged() -> None:
        described = await client.get_workflow_handle(workflow_id).describe()
        assert described.typed_search_attributes.get(sa.SAGA_JEOPARDY) == ["needs_attention"]

    await eventually(flagged, within=10)
    await sagas.resolve(client, workflow_id, ResolveAction.MARK_HANDLED, "re-ordered by hand")
    assert (await result_of(client, workflow_id))["phase"] == "COMPENSATED"
    received = await wait_for_types(sandbox_admin, endpoint, 4)
    assert types_of(received)[3:] == ["saga.compensated"]


async def test_a_termination_still_busy_after_its_horizon_is_in_jeopardy_once(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rules, "STN_BUSY_HORIZON", timedelta(seconds=1))
    endpoint = f"fast-busy-{uid}"
    await subscribe(client, settings.task_queue, sandbox_admin, endpoint)
    busy = Gate()
    fakes.on(POLL_LINE, busy.hold(fakes.default(POLL_LINE)))
    workflow_id = await terminate(client, settings, uid)

    received = await wait_for_types(sandbox_admin, endpoint, 1)
    assert types_of(received) == ["saga.jeopardy"]
    assert received[0]["data"]["jeopardyCause"] == "stn_busy"
    assert received[0]["data"]["phase"] == "POLLING"
    busy.open()
    assert (await result_of(client, workflow_id))["phase"] == "COMPLETED"

    received = await wait_for_types(sandbox_admin, endpoint, 2)
    assert types_of(received) == ["saga.jeopardy", "saga.completed"]
    final = received[1]["data"]
    assert [j["cause"] for j in final["jeopardy"]] == ["stn_busy"]


async def test_an_airalo_order_near_its_cutoff_and_not_cancelled_is_in_jeopardy(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    """Its cut-off is 2 h away (within the 6 h horizon) and the cancel call is held:
    jeopardy at once, by construction; then cancelled and COMPLETED."""
    endpoint = f"fast-cutoff-{uid}"
    await subscribe(client, settings.task_queue, sandbox_admin, endpoint)
    request_id = fakes.add_future_order(datetime.now(UTC) + timedelta(hours=26))
    held = Gate()
    fakes.on(CANCEL_ESIMS, held.hold(fakes.default(CANCEL_ESIMS)))
    request = FutureOrderCancellationRequest(request_ids=[request_id])
    started = await sagas.start(client, SagaKind.FUTURE_ORDER_CANCELLATION, request, settings)

    received = await wait_for_types(sandbox_admin, endpoint, 1)
    assert types_of(received) == ["saga.jeopardy"]
    assert received[0]["data"]["jeopardyCause"] == "airalo_cutoff"
    assert request_id in received[0]["data"]["jeopardy"][0]["detail"]
    held.open()
    assert (await result_of(client, started.workflow_id))["phase"] == "COMPLETED"
    received = await wait_for_types(sandbox_admin, endpoint, 2)
    assert types_of(received) == ["saga.jeopardy", "saga.completed"]


async def test_an_order_far_from_its_cutoff_is_not_in_jeopardy(
    client: Client,
    fake_worker: Worker,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    endpoint = f"fast-far-{uid}"
    await subscribe(client, settings.task_queue, sandbox_admin, endpoint)
    request = FutureOrderCancellationRequest(request_ids=[fakes.add_future_order(in_days(5))])
    started = await sagas.start(client, SagaKind.FUTURE_ORDER_CANCELLATION, request, settings)
    final = await result_of(client, started.workflow_id)

    received = await wait_for_types(sandbox_admin, endpoint, 1)
    assert types_of(received) == ["saga.completed"] and final["jeopardy"] == []


async def test_runs_of_the_generation_before_emit_nothing(
    client: Client,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    task_queue: str,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    """A rolling upgrade: with ``outcome-events`` held (and the generation after it), new
    runs take the generation before it: no publish marker, no jeopardy timer, so nothing
    to deliver."""
    held = WorkerSettings(
        hold_patches=f"{patches.AIRALO_LIST_PAGE_BY_PAGE},{patches.OUTCOME_EVENTS}"
    )
    async with build_worker(client, task_queue, ProviderClients.of(fakes.activities()), held):
        await subscribe(client, task_queue, sandbox_admin, f"fast-held-{uid}")
        workflow_id = await terminate(client, settings, uid)
        assert (await result_of(client, workflow_id))["phase"] == "COMPLETED"
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    markers = [
        json.loads(e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data)["id"]
        for e in history.events
        if e.HasField("marker_recorded_event_attributes")
        and "patch-data" in e.marker_recorded_event_attributes.details
    ]
    local_activities = [
        e
        for e in history.events
        if e.HasField("marker_recorded_event_attributes")
        and "patch-data" not in e.marker_recorded_event_attributes.details
    ]
    timers = [e for e in history.events if e.HasField("timer_started_event_attributes")]
    assert markers == [patches.PROVIDER_LANES]
    assert local_activities == [] and timers == []
