"""FutureOrderCancellation end to end: real Temporal dev server, real worker, sandbox over HTTP.

The compensation (re-creating a cancelled order) is tested three times: the
activity against the sandbox in an ``ActivityEnvironment`` (incl. a lost
response), the workflow step ``airalo_steps.recreate_future_orders`` through a
real worker running a small test-only workflow, and the saga's ``revoke``. The
shared ``FutureOrderCanceller``'s ``keep_due_before`` (the churn saga's) runs in a
test-only workflow too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import ActivityEnvironment

import starter.cli
from activities.airalo import AiraloActivities, AiraloTokens
from activities.provider_http import json_http_client
from config.settings import AiraloSettings, OrchestratorSettings
from domain.airalo import (
    AiraloActivity,
    CreateFutureOrder,
    FutureOrder,
    FutureOrderCancellationRequest,
    OrderOutcomeRecord,
    RecreatedFutureOrder,
)
from domain.common import (
    ErrorType,
    Provider,
    RevokeRequest,
    SagaKind,
    SagaPhase,
)
from sandbox.settings import SandboxSettings
from sandbox.testing import SandboxAdmin, SandboxServer
from starter import sagas
from tests.conftest import provider_settings_for
from tests.helpers import eventually, record_history, result_of, status_of
from worker import ProductWorkers, build_worker, provider_clients
from workflows import airalo_steps
from workflows.airalo_canceller import FutureOrderCanceller
from workflows.future_order_cancellation import FutureOrderCancellationSaga
from workflows.ledger import SagaLedger
from workflows.operator_inbox import OperatorRequest

TOKEN = "/v2/token"
ORDERS = "/v2/future-orders"
CANCEL = "/v2/cancel-future-orders"


# -- helpers -------------------------------------------------------------------------


def seed(
    admin: SandboxAdmin,
    uid: str,
    count: int = 1,
    *,
    due: datetime | None = None,
    status: str | None = None,
    quantity: int = 1,
    description: str | None = None,
) -> list[str]:
    due = due or datetime.now(UTC) + timedelta(days=5)
    return [
        admin.airalo_seed_future_order(
            f"pkg-{uid}", due, quantity=quantity, description=description, status=status
        )["request_id"]
        for _ in range(count)
    ]


def unknown_id() -> str:
    return uuid.uuid4().hex[:25]


def cancel_calls(admin: SandboxAdmin, request_ids: list[str]) -> list[dict[str, Any]]:
    """Cancel calls that carried any of ``request_ids`` (other tests' calls are ignored)."""
    wanted = set(request_ids)
    return [
        call
        for call in admin.calls(provider="airalo", path=CANCEL)
        if wanted & set((call["requestBody"] or {}).get("request_ids") or [])
    ]


def outcomes(state: dict[str, Any]) -> dict[str, str]:
    return {o["requestId"]: o["outcome"] for o in state["outcomes"]}


def reasons(state: dict[str, Any]) -> dict[str, str]:
    return {o["requestId"]: o["reason"] for o in state["outcomes"]}


async def start(
    client: Client, settings: OrchestratorSettings, request_ids: list[str], **fields: Any
) -> sagas.StartedSaga:
    request = FutureOrderCancellationRequest.model_validate({"requestIds": request_ids, **fields})
    return await sagas.start(client, SagaKind.FUTURE_ORDER_CANCELLATION, request, settings)


# -- batching and 422s -----------------------------------------------------------------


async def test_twenty_five_ids_take_three_cancel_calls(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    base = datetime.now(UTC) + timedelta(days=3)
    # Later IDs are due earlier: the first call must carry the ten earliest cut-offs.
    ids = [seed(sandbox_admin, uid, due=base + timedelta(hours=25 - n))[0] for n in range(25)]
    started = await start(client, settings, ids, customerId=f"C-{uid}")

    final = await result_of(client, started.workflow_id)

    assert final["phase"] == "COMPLETED"
    assert len(final["outcomes"]) == 25
    assert set(outcomes(final).values()) == {"CANCELLED"}
    calls = cancel_calls(sandbox_admin, ids)
    assert [len(c["requestBody"]["request_ids"]) for c in calls] == [10, 10, 5]
    assert [c["status"] for c in calls] == [200, 200, 200]
    assert calls[0]["requestBody"]["request_ids"] == ids[::-1][:10]
    assert final["cancelCalls"] == 3 and final["lookups"] == 1
    assert {o["requestId"] for o in final["recordedOrders"]} == set(ids)  # details recorded
    assert all(sandbox_admin.airalo_get_future_order(i)["status"] == "cancelled" for i in ids)


async def test_unknown_and_processed_ids_are_reported_and_the_rest_resent_once(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    pending = seed(sandbox_admin, uid, 8)
    processed = seed(sandbox_admin, uid, status="processed")[0]
    unknown = unknown_id()
    ids = [*pending[:3], unknown, *pending[3:6], processed, *pending[6:]]
    started = await start(client, settings, ids)

    final = await result_of(client, started.workflow_id)

    assert final["phase"] == "COMPLETED"
    assert outcomes(final) == {
        **dict.fromkeys(pending, "CANCELLED"),
        unknown: "NOT_FOUND",
        processed: "ALREADY_PROCESSED",
    }
    assert "does not exist" in reasons(final)[unknown]
    assert "already processed" in reasons(final)[processed]
    calls = cancel_calls(sandbox_admin, ids)
    assert [c["status"] for c in calls] == [422, 200]
    assert sorted(calls[0]["requestBody"]["request_ids"]) == sorted(ids)
    assert sorted(calls[1]["requestBody"]["request_ids"]) == sorted(pending)
    await record_history(
        client.get_workflow_handle(started.workflow_id), "future_order_cancellation_completed"
    )


async def test_partial_422_whose_other_ids_were_cancelled_is_settled_by_lookup(
    client: Client, settings: OrchestratorSettings, uid: str
) -> None:
    """Airalo does not document what a 422 did with the IDs it did not name. A sandbox
    that cancels them anyway: the saga looks them up instead of claiming or resending."""
    partial = SandboxSettings(airalo_partial_cancel=True, airalo_token_rate_limit_per_minute=1000)
    with SandboxServer(partial) as own, SandboxAdmin(own.base_url) as admin:
        pending = seed(admin, uid, 3)
        processed = seed(admin, uid, status="processed")[0]
        ids = [*pending, processed]
        async with (
            provider_clients(provider_settings_for(own)) as clients,
            build_worker(client, settings.task_queue, clients),
        ):
            final = await result_of(client, (await start(client, settings, ids)).workflow_id)

        assert final["phase"] == "COMPLETED"
        assert outcomes(final) == {
            **dict.fromkeys(pending, "CANCELLED"),
            processed: "ALREADY_PROCESSED",
        }
        assert all("422 naming other IDs" in reasons(final)[i] for i in pending)
        # One call, answered 422, cancelled the three: nothing was sent again.
        assert [c["status"] for c in cancel_calls(admin, ids)] == [422]
        assert all(admin.airalo_get_future_order(i)["status"] == "cancelled" for i in pending)


async def test_order_inside_its_24_hour_window_is_refused_without_a_call(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    late = seed(sandbox_admin, uid, due=datetime.now(UTC) + timedelta(hours=12))[0]
    fine = seed(sandbox_admin, uid)[0]
    started = await start(client, settings, [late, fine])

    final = await result_of(client, started.workflow_id)

    assert final["phase"] == "COMPLETED"
    assert outcomes(final) == {late: "MISSED_DEADLINE", fine: "CANCELLED"}
    assert "cut-off" in reasons(final)[late] and "not sent" in reasons(final)[late]
    assert cancel_calls(sandbox_admin, [late]) == []
    assert [c["requestBody"]["request_ids"] for c in cancel_calls(sandbox_admin, [fine])] == [
        [fine]
    ]
    assert sandbox_admin.airalo_get_future_order(late)["status"] == "pending"


async def test_only_late_orders_means_completed_with_reasons_and_no_call(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    late = seed(sandbox_admin, uid, due=datetime.now(UTC) + timedelta(hours=2))[0]
    started = await start(client, settings, [late])

    final = await result_of(client, started.workflow_id)

    assert final["phase"] == "COMPLETED" and outcomes(final) == {late: "MISSED_DEADLINE"}
    assert final["cancelCalls"] == 0 and cancel_calls(sandbox_admin, [late]) == []


# -- lost responses, faults, the deadline race -------------------------------------------


@pytest.mark.own_sandbox  # a sandbox-wide fault
async def test_lost_response_is_settled_by_the_listing_without_double_effects(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    ids = seed(sandbox_admin, uid, 3)
    sandbox_admin.add_fault(
        provider="airalo", method="POST", path=CANCEL, mode="drop_response", count=1
    )
    started = await start(client, settings, ids)

    final = await result_of(client, started.workflow_id)

    assert final["phase"] == "COMPLETED"
    assert set(outcomes(final).values()) == {"CANCELLED"}
    assert all("answer was lost" in reason for reason in reasons(final).values())
    calls = cancel_calls(sandbox_admin, ids)
    # The first call was applied and its answer lost; the retry heard "already
    # processed" and the listing settled it. Exactly one call took effect.
    assert [(c["status"], c["applied"]) for c in calls] == [(504, True), (422, False)]
    assert final["lookups"] == 2
    assert any(s["step"] == "settled" for s in final["steps"])
    assert all(sandbox_admin.airalo_get_future_order(i)["status"] == "cancelled" for i in ids)
    await record_history(
        client.get_workflow_handle(started.workflow_id), "future_order_cancellation_lost_response"
    )


# Wall clock ~2 s: Airalo's Retry-After of 2 s, which is asserted.
@pytest.mark.own_sandbox  # a sandbox-wide fault
async def test_rate_limited_cancel_is_retried_after_retry_after(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    ids = seed(sandbox_admin, uid, 2)
    sandbox_admin.add_fault(
        provider="airalo", path=CANCEL, mode="rate_limit", retryAfterSeconds=2, count=1
    )
    started = await start(client, settings, ids)

    final = await result_of(client, started.workflow_id)

    assert set(outcomes(final).values()) == {"CANCELLED"}
    calls = cancel_calls(sandbox_admin, ids)
    assert [c["status"] for c in calls] == [429, 200]
    waited = datetime.fromisoformat(calls[1]["at"]) - datetime.fromisoformat(calls[0]["at"])
    assert waited >= timedelta(seconds=2)  # Retry-After was honoured, not the 1 s backoff


# Wall clock 5-65 s (the slowest test): Airalo's dates have minutes only, so the
# earliest cut-off is the next whole minute. Kept for the real 503 path; the same
# deadline race runs in ~2 s in tests/fast (cut-off to the second).
@pytest.mark.own_sandbox  # a sandbox-wide fault
async def test_provider_down_until_the_cutoff_misses_the_deadline_others_retried(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    # Airalo's dates have minutes only: the soonest usable cut-off is the next
    # whole minute at least a few seconds ahead.
    now = datetime.now(UTC)
    cutoff = (now + timedelta(seconds=5)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    urgent = seed(sandbox_admin, uid, due=cutoff + timedelta(hours=24))[0]
    relaxed = seed(sandbox_admin, uid)[0]
    sandbox_admin.add_fault(provider="airalo", method="POST", path=CANCEL, mode="error", status=503)
    started = await start(client, settings, [urgent, relaxed])

    async def urgent_missed() -> dict[str, Any]:
        state = await status_of(client, started.workflow_id)
        assert outcomes(state)[urgent] == "MISSED_DEADLINE", outcomes(state)
        return state

    missed = await eventually(urgent_missed, within=100)
    # The other order is still being retried, with its own (later) deadline.
    assert outcomes(missed)[relaxed] in ("PENDING", "CANCELLING")
    sandbox_admin.clear_faults()  # Airalo recovers
    final = await result_of(client, started.workflow_id)

    assert final["phase"] == "COMPLETED"
    assert outcomes(final) == {urgent: "MISSED_DEADLINE", relaxed: "CANCELLED"}
    reason = reasons(final)[urgent]
    assert "unavailable until its cut-off" in reason and "503" in reason
    tried = cancel_calls(sandbox_admin, [urgent])
    assert len(tried) >= 2 and {c["status"] for c in tried} == {503}
    # Retried up to the cut-off, not beyond (a call in flight may land just after it).
    assert all(datetime.fromisoformat(c["at"]) < cutoff + timedelta(seconds=1) for c in tried)
    assert sandbox_admin.airalo_get_future_order(urgent)["status"] == "pending"
    assert sandbox_admin.airalo_get_future_order(relaxed)["status"] == "cancelled"


@pytest.mark.own_sandbox  # a sandbox-wide fault
async def test_cancelling_the_workflow_stops_it_and_says_what_is_unknown(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    ids = seed(sandbox_admin, uid, 2)
    sandbox_admin.add_fault(provider="airalo", method="POST", path=CANCEL, mode="error", status=503)
    started = await start(client, settings, ids)

    async def cancelling() -> None:
        state = await status_of(client, started.workflow_id)
        assert set(outcomes(state).values()) == {"CANCELLING"}, outcomes(state)

    await eventually(cancelling)
    await sagas.cancel(client, started.workflow_id)

    with pytest.raises(WorkflowFailureError) as failure:
        await client.get_workflow_handle(started.workflow_id).result()
    assert isinstance(failure.value.cause, CancelledError)
    final = await status_of(client, started.workflow_id)
    assert final["phase"] == "REVOKED"
    assert set(outcomes(final).values()) == {"FAILED"}
    assert all("in flight may have cancelled it" in r for r in reasons(final).values())


# -- revoke ------------------------------------------------------------------------------


# Wall clock ~4 s: the second batch's 503s must be retried at least once (1 s
# backoff) before the revoke. Needed for real HTTP.
@pytest.mark.own_sandbox  # sandbox-wide faults
async def test_revoke_mid_run_recreates_the_first_batch_and_never_cancels_the_second(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    base = (datetime.now(UTC) + timedelta(days=5)).replace(minute=0, second=0, microsecond=0)
    due = [base + timedelta(hours=n) for n in range(12)]
    ids = [
        seed(sandbox_admin, uid, due=due[n], quantity=2, description=f"trip {uid} {n}")[0]
        for n in range(12)
    ]
    first, second = ids[:10], ids[10:]  # earliest cut-offs first
    # The first cancel call goes through; the second gets 503s and keeps retrying.
    sandbox_admin.add_fault(
        provider="airalo", method="POST", path=CANCEL, mode="latency", latencySeconds=0, count=1
    )
    sandbox_admin.add_fault(provider="airalo", method="POST", path=CANCEL, mode="error", status=503)
    started = await start(client, settings, ids, customerId=f"C-{uid}")

    async def second_batch_in_flight() -> None:
        state = await status_of(client, started.workflow_id)
        now = outcomes(state)
        assert [now[i] for i in ids] == ["CANCELLED"] * 10 + ["CANCELLING"] * 2, now
        assert len(cancel_calls(sandbox_admin, second)) >= 2  # retried at least once

    await eventually(second_batch_in_flight)
    revoked = await sagas.revoke(client, started.workflow_id, "customer stays")

    assert revoked["phase"] == "REVOKED"
    assert outcomes(revoked) == {
        **dict.fromkeys(first, "CANCELLED"),
        **dict.fromkeys(second, "KEPT"),
    }
    assert all("not cancelled (customer stays)" in reasons(revoked)[i] for i in second)
    recreated = {r["originalRequestId"]: r["requestId"] for r in revoked["recreated"]}
    assert set(recreated) == set(first)
    assert all(new is not None and new not in ids for new in recreated.values())
    assert all(f"re-created by the revoke as {recreated[i]}" in reasons(revoked)[i] for i in first)
    assert revoked["lastError"] is None
    steps = [s["step"] for s in revoked["steps"]]
    assert steps.index("revoking") < steps.index("call_stopped") < steps.index("recreated")
    assert steps[-1] == "revoked"
    # Each cancelled order re-created exactly once, from the details recorded at lookup.
    creates = [
        c
        for c in sandbox_admin.calls(provider="airalo", method="POST", path=ORDERS)
        if (c["requestBody"] or {}).get("package_id") == f"pkg-{uid}"
    ]
    assert all(c["status"] == 200 for c in creates)
    assert sorted(
        (b["package_id"], b["quantity"], b["due_date"], b.get("description"))
        for b in (c["requestBody"] for c in creates)
    ) == [
        (f"pkg-{uid}", 2, due[n].strftime("%Y-%m-%d %H:%M"), f"trip {uid} {n}") for n in range(10)
    ]
    for n, original in enumerate(first):
        order = sandbox_admin.airalo_get_future_order(recreated[original])
        assert order["status"] == "pending"
        assert (order["quantity"], order["due_date"], order["description"]) == (
            2,
            due[n].strftime("%Y-%m-%d %H:%M"),
            f"trip {uid} {n}",
        )
        assert sandbox_admin.airalo_get_future_order(original)["status"] == "cancelled"
    # The second batch was never cancelled: every call carrying it got a 503.
    assert {c["status"] for c in cancel_calls(sandbox_admin, second)} == {503}
    assert all(sandbox_admin.airalo_get_future_order(i)["status"] == "pending" for i in second)
    assert [c["status"] for c in cancel_calls(sandbox_admin, first)] == [200]
    final = await result_of(client, started.workflow_id)
    assert final["phase"] == "REVOKED"
    await record_history(
        client.get_workflow_handle(started.workflow_id), "future_order_cancellation_revoked"
    )


# Wall clock ~4 s: a 3 s latency keeps the first call in flight while the revoke
# arrives. Needed for the real cancel (WAIT_CANCELLATION_COMPLETED); tests/fast
# holds the call with a gate instead.
@pytest.mark.own_sandbox  # a sandbox-wide fault
async def test_revoke_during_a_call_lets_its_answer_count_and_sends_nothing_more(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    base = datetime.now(UTC) + timedelta(days=4)
    ids = [seed(sandbox_admin, uid, due=base + timedelta(hours=n))[0] for n in range(12)]
    first, second = ids[:10], ids[10:]
    # The first cancel call is slow: the revoke arrives while Airalo is applying it.
    sandbox_admin.add_fault(
        provider="airalo", method="POST", path=CANCEL, mode="latency", latencySeconds=3, count=1
    )
    started = await start(client, settings, ids)

    async def first_call_sent() -> None:
        assert len(cancel_calls(sandbox_admin, first)) == 0  # logged when answered
        state = await status_of(client, started.workflow_id)
        assert state["cancelCalls"] == 1, state["cancelCalls"]
        # Running on the worker, not only scheduled: a revoke cancels a call that never
        # started, and those ten would rightly stay KEPT.
        description = await client.get_workflow_handle(started.workflow_id).describe()
        states = [
            pending.state
            for pending in description.raw_description.pending_activities
            if pending.activity_type.name == AiraloActivity.CANCEL_FUTURE_ORDERS
        ]
        assert states == [PendingActivityState.PENDING_ACTIVITY_STATE_STARTED], states

    await eventually(first_call_sent)
    revoked = await sagas.revoke(client, started.workflow_id, None)

    assert revoked["phase"] == "REVOKED"
    # The call in flight was waited for: Airalo's 200 counts, so those ten are re-created.
    assert outcomes(revoked) == {
        **dict.fromkeys(first, "CANCELLED"),
        **dict.fromkeys(second, "KEPT"),
    }
    assert [c["status"] for c in cancel_calls(sandbox_admin, ids)] == [200]
    assert revoked["cancelCalls"] == 1
    assert sorted(r["originalRequestId"] for r in revoked["recreated"]) == sorted(first)
    assert all(r["requestId"] for r in revoked["recreated"])
    assert all(sandbox_admin.airalo_get_future_order(i)["status"] == "pending" for i in second)
    assert "revoked by operator" in revoked["steps"][-1]["detail"]


async def test_revoke_of_a_finished_saga_is_refused(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    ids = seed(sandbox_admin, uid, 2)
    started = await start(client, settings, ids)
    await result_of(client, started.workflow_id)

    # The run is closed: refused before any update is sent, nothing is re-created.
    with pytest.raises(sagas.SagaClosed) as closed:
        await sagas.revoke(client, started.workflow_id, "too late")
    assert "closed (COMPLETED)" in str(closed.value), closed.value
    assert all(sandbox_admin.airalo_get_future_order(i)["status"] == "cancelled" for i in ids)


def test_revoke_validator_explains_why_it_refuses() -> None:
    """The validator alone: a final saga (between its last step and closing) or a
    second revoke while the first is applied."""
    saga = FutureOrderCancellationSaga(
        FutureOrderCancellationRequest.model_validate({"requestIds": [unknown_id()]})
    )
    saga._validate_revoke(RevokeRequest())  # running: accepted
    for phase in (SagaPhase.COMPLETED, SagaPhase.FAILED, SagaPhase.REVOKED):
        saga._ledger.phase = phase
        with pytest.raises(ValueError, match=f"already {phase.value}.*no cancellation is running"):
            saga._validate_revoke(RevokeRequest())
    saga._ledger.phase = SagaPhase.REVOKING
    saga._steering.inbox.in_progress = OperatorRequest(RevokeRequest())
    with pytest.raises(ValueError, match="another request is being applied"):
        saga._validate_revoke(RevokeRequest())


# -- the token -------------------------------------------------------------------------


@pytest.mark.own_sandbox  # revokes every token; counts every Airalo call
async def test_token_fetched_once_refreshed_after_401(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    def token_calls() -> int:
        return len(sandbox_admin.calls(provider="airalo", path=TOKEN))

    before = token_calls()
    first = seed(sandbox_admin, uid, 12)
    done = await result_of(client, (await start(client, settings, first)).workflow_id)
    assert set(outcomes(done).values()) == {"CANCELLED"}
    # One lookup and two cancel calls, one token.
    assert token_calls() == before + 1

    sandbox_admin.airalo_revoke_tokens()
    # One order of each listed status: the lookup reads them all before it stops.
    second = [
        *seed(sandbox_admin, uid),
        *seed(sandbox_admin, uid, status="failed"),
        *seed(sandbox_admin, uid, status="retry"),
    ]
    calls_before = len(sandbox_admin.calls(provider="airalo"))
    done = await result_of(client, (await start(client, settings, second)).workflow_id)

    assert set(outcomes(done).values()) == {"CANCELLED"}
    assert token_calls() == before + 2  # refreshed once, after the 401
    later = sandbox_admin.calls(provider="airalo")[calls_before:]
    assert [(c["method"], c["path"], c["status"]) for c in later] == [
        ("GET", ORDERS, 401),
        ("POST", TOKEN, 200),
        ("GET", ORDERS, 200),
        ("GET", ORDERS, 200),
        ("GET", ORDERS, 200),
        ("POST", CANCEL, 200),
    ]
    # Airalo lists only pending orders unless asked: every status is asked for, a page
    # a request (one activity each).
    listed = [c for c in later if c["path"] == ORDERS and c["status"] == 200]
    assert [c["query"].get("status") for c in listed] == [
        "pending",
        "failed",
        "retry",
    ]


# -- duplicates and the CLI -------------------------------------------------------------


# Wall clock ~2 s: a 2 s latency only keeps the first run open for the second request.
@pytest.mark.own_sandbox  # a sandbox-wide fault
async def test_the_same_ids_in_any_order_attach_to_the_running_saga(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    ids = seed(sandbox_admin, uid, 2)
    # Keep the first run busy for a moment so the second request finds it open.
    sandbox_admin.add_fault(
        provider="airalo", method="GET", path=ORDERS, mode="latency", latencySeconds=2, count=1
    )
    first = await start(client, settings, ids)
    second = await start(client, settings, ids[::-1])

    assert not first.already_running and second.already_running
    assert (second.workflow_id, second.run_id) == (first.workflow_id, first.run_id)
    await result_of(client, first.workflow_id)
    assert len(cancel_calls(sandbox_admin, ids)) == 1


@pytest.mark.own_sandbox  # counts every Airalo call
async def test_invalid_inputs_are_rejected_with_nothing_started(
    client: Client,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", client.service_client.config.target_host)
    monkeypatch.setenv("CANCEL_TASK_QUEUE", settings.task_queue)
    good = unknown_id()
    provider_calls = len(sandbox_admin.calls(provider="airalo"))
    cases = [
        (["too-short"], "requestIds.0", "exactly 25 characters"),
        ([good, good], "requestIds", "unique"),
        ([good, "x" * 26], "requestIds.1", "exactly 25 characters (got 26)"),
        ([good, "--customer-id", ""], "customerId", "at least 1 character"),
    ]

    for argv, field, rule in cases:
        code = await asyncio.to_thread(starter.cli.main, ["cancel-future-orders", *argv])
        stderr = capsys.readouterr().err
        assert code == 2, argv
        assert f"invalid {field}: " in stderr and rule in stderr, stderr

    assert len(sandbox_admin.calls(provider="airalo")) == provider_calls
    started = [w async for w in client.list_workflows(f"TaskQueue = '{settings.task_queue}'")]
    assert started == []


async def test_cli_starts_the_saga_and_status_lists_every_outcome(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    uid: str,
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", client.service_client.config.target_host)
    monkeypatch.setenv("CANCEL_TASK_QUEUE", settings.task_queue)
    ids = [*seed(sandbox_admin, uid, 2), unknown_id()]

    code = await asyncio.to_thread(
        # Request ids may begin with '-': after "--", as the help says.
        starter.cli.main,
        ["cancel-future-orders", "--customer-id", f"C-{uid}", "--", *ids],
    )
    workflow_id = capsys.readouterr().out.strip()
    assert code == 0 and workflow_id.startswith("cancel-future-orders-")
    await result_of(client, workflow_id)

    code = await asyncio.to_thread(starter.cli.main, ["status", workflow_id])
    printed = capsys.readouterr().out.splitlines()
    assert code == 0
    assert "FutureOrderCancellation" in printed[0] and "COMPLETED" in printed[0]
    expected = {ids[0]: "CANCELLED", ids[1]: "CANCELLED", ids[2]: "NOT_FOUND"}
    for request_id, outcome in expected.items():
        lines = [line for line in printed if line.strip().startswith(f"{request_id}  {outcome}")]
        assert len(lines) == 1, printed

    async def listed() -> None:
        code = await asyncio.to_thread(starter.cli.main, ["list", "--customer-id", f"C-{uid}"])
        rows = [line for line in capsys.readouterr().out.splitlines() if workflow_id in line]
        assert code == 0 and len(rows) == 1 and "COMPLETED" in rows[0], rows

    await eventually(listed)


# -- compensation: re-create a cancelled order ------------------------------------------


@workflow.defn(name="RecreateFutureOrdersProbe")
class RecreateFutureOrdersProbe:
    """Test-only: runs the churn saga's compensation step on a real worker."""

    @workflow.run
    async def run(self, details: list[FutureOrder]) -> list[RecreatedFutureOrder]:
        return await airalo_steps.recreate_future_orders(details)


@workflow.defn(name="FutureOrderCancellerProbe")
class FutureOrderCancellerProbe:
    """Test-only: the shared canceller as the churn saga runs it (``keep_due_before``)."""

    @workflow.run
    async def run(
        self, request_ids: list[str], keep_due_before: datetime
    ) -> list[OrderOutcomeRecord]:
        ledger = SagaLedger(SagaKind.CUSTOMER_CHURN, [Provider.AIRALO])
        canceller = FutureOrderCanceller(request_ids, ledger, keep_due_before=keep_due_before)
        await canceller.run()
        assert ledger.phase == SagaPhase.RECEIVED  # the canceller never moves the phase
        assert [o.request_id for o in canceller.cancelled_orders()] == [
            i for i, r in canceller.outcomes.items() if r.outcome == "CANCELLED"
        ]
        return list(canceller.outcomes.values())


@asynccontextmanager
async def probe_worker(
    client: Client, sandbox: SandboxServer, task_queue: str
) -> AsyncIterator[ProductWorkers]:
    """The production activities and lanes, with the probe workflows, on their own worker."""
    async with (
        provider_clients(provider_settings_for(sandbox)) as clients,
        build_worker(
            client,
            task_queue,
            clients,
            workflows=[RecreateFutureOrdersProbe, FutureOrderCancellerProbe],
            # Sandboxed like production, but this test module (pytest, the
            # sandbox server...) is passed through instead of re-imported.
            passthrough=["tests"],
        ) as running,
    ):
        yield running


async def run_probe(
    client: Client, sandbox: SandboxServer, task_queue: str, details: list[FutureOrder]
) -> list[RecreatedFutureOrder]:
    async with probe_worker(client, sandbox, task_queue):
        return await client.execute_workflow(
            RecreateFutureOrdersProbe.run, details, id=f"probe-{task_queue}", task_queue=task_queue
        )


async def test_canceller_keeps_orders_due_at_or_before_the_churn_date(
    client: Client,
    settings: OrchestratorSettings,
    sandbox: SandboxServer,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    churn = (datetime.now(UTC) + timedelta(days=5)).replace(second=0, microsecond=0)
    before = seed(sandbox_admin, uid, due=churn - timedelta(days=1))[0]
    at = seed(sandbox_admin, uid, due=churn)[0]
    # Inside its 24 h window as well: kept, not MISSED_DEADLINE (it was never to go).
    soon = seed(sandbox_admin, uid, due=datetime.now(UTC) + timedelta(hours=12))[0]
    after = seed(sandbox_admin, uid, 2, due=churn + timedelta(minutes=1))
    ids = [before, after[0], at, soon, after[1]]
    task_queue = f"{settings.task_queue}-canceller"

    async with probe_worker(client, sandbox, task_queue):
        records = await client.execute_workflow(
            FutureOrderCancellerProbe.run,
            args=[ids, churn],
            id=f"probe-{task_queue}",
            task_queue=task_queue,
        )

    final = {r.request_id: r for r in records}
    assert {i: r.outcome.value for i, r in final.items()} == {
        before: "KEPT",
        at: "KEPT",
        soon: "KEPT",
        after[0]: "CANCELLED",
        after[1]: "CANCELLED",
    }
    churn_text = churn.strftime("%Y-%m-%d %H:%M")
    for kept in (before, at, soon):
        assert f"before the churn date {churn_text} UTC; left in place" in final[kept].reason
        assert sandbox_admin.airalo_get_future_order(kept)["status"] == "pending"
    assert [c["requestBody"]["request_ids"] for c in cancel_calls(sandbox_admin, ids)] == [after]


async def test_compensation_recreates_cancelled_orders_through_a_worker(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox: SandboxServer,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    due = (datetime.now(UTC) + timedelta(days=6)).replace(second=0, microsecond=0)
    ids = seed(sandbox_admin, uid, 2, due=due, quantity=3, description=f"trip {uid}")
    cancelled = await result_of(client, (await start(client, settings, ids)).workflow_id)
    assert set(outcomes(cancelled).values()) == {"CANCELLED"}
    details = [FutureOrder.model_validate(order) for order in cancelled["recordedOrders"]]

    results = await run_probe(client, sandbox, f"{settings.task_queue}-probe", details)

    assert [r.original_request_id for r in results] == [d.request_id for d in details]
    assert all(r.error is None and r.request_id not in ids for r in results)
    for result in results:
        assert result.request_id is not None
        order = sandbox_admin.airalo_get_future_order(result.request_id)
        assert order["status"] == "pending"
        assert (order["package_id"], order["quantity"], order["description"]) == (
            f"pkg-{uid}",
            3,
            f"trip {uid}",
        )
        assert order["due_date"] == due.strftime("%Y-%m-%d %H:%M")
    creates = [
        c
        for c in sandbox_admin.calls(provider="airalo", method="POST", path=ORDERS)
        if (c["requestBody"] or {}).get("package_id") == f"pkg-{uid}"
    ]
    assert len(creates) == 2 and all(c["status"] == 200 for c in creates)
    assert all(sandbox_admin.airalo_get_future_order(i)["status"] == "cancelled" for i in ids)


async def test_compensation_refused_by_airalo_is_reported_per_order(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox: SandboxServer,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    # Cancellable now (24 hours or more ahead), but too soon to be created again (Airalo
    # takes due dates "from the day after tomorrow (UTC)"): between the two. A fixed
    # "30 hours ahead" was the day after tomorrow itself from 18:00 UTC on.
    now = datetime.now(UTC)
    day_after_tomorrow = datetime.combine(now.date() + timedelta(days=2), time(), UTC)
    earliest = now + timedelta(hours=24, minutes=5)
    if day_after_tomorrow - earliest < timedelta(minutes=2):
        # The last minutes before midnight UTC leave no such time: wait for the new day
        # (the wall clock is the condition here).
        await asyncio.sleep((day_after_tomorrow - timedelta(days=1) - now).total_seconds() + 1)
        now = datetime.now(UTC)
        day_after_tomorrow = datetime.combine(now.date() + timedelta(days=2), time(), UTC)
        earliest = now + timedelta(hours=24, minutes=5)
    soon = seed(sandbox_admin, uid, due=earliest + (day_after_tomorrow - earliest) / 2)[0]
    cancelled = await result_of(client, (await start(client, settings, [soon])).workflow_id)
    details = [FutureOrder.model_validate(order) for order in cancelled["recordedOrders"]]

    results = await run_probe(client, sandbox, f"{settings.task_queue}-probe", details)

    assert len(results) == 1 and results[0].request_id is None
    assert results[0].error is not None and "day after tomorrow" in results[0].error


@pytest.mark.own_sandbox  # a sandbox-wide fault
async def test_create_activity_finds_the_order_a_lost_attempt_created(
    sandbox: SandboxServer, sandbox_admin: SandboxAdmin, uid: str
) -> None:
    due = datetime.now(UTC) + timedelta(days=4)
    original = seed(sandbox_admin, uid, due=due, description="lost", status="cancelled")[0]
    twin = seed(sandbox_admin, uid, due=due, description="lost")[0]  # the partner's own
    details = FutureOrder.from_airalo(sandbox_admin.airalo_get_future_order(original))
    request = CreateFutureOrder(order=details, identical_before=[twin])
    settings = AiraloSettings(base_url=sandbox.airalo_url)
    sandbox_admin.add_fault(
        provider="airalo", method="POST", path=ORDERS, mode="drop_response", count=1
    )

    async with json_http_client(settings.base_url, settings.timeout_seconds) as http:
        activities = AiraloActivities(http, AiraloTokens.from_settings(http, settings))
        env = ActivityEnvironment()
        with pytest.raises(ApplicationError) as lost:
            await env.run(activities.create_future_order, request)
        assert lost.value.type == ErrorType.PROVIDER_UNAVAILABLE
        env.info = dataclasses.replace(env.info, attempt=2)
        recovered = await env.run(activities.create_future_order, request)

    assert recovered.recovered and recovered.request_id not in (original, twin)
    assert recovered.original_request_id == original
    creates = [
        c
        for c in sandbox_admin.calls(provider="airalo", method="POST", path=ORDERS)
        if (c["requestBody"] or {}).get("package_id") == f"pkg-{uid}"
    ]
    assert [(c["status"], c["applied"]) for c in creates] == [(504, True)]
    assert sandbox_admin.airalo_get_future_order(recovered.request_id)["status"] == "pending"
