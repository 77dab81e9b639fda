"""LineTermination end to end: real Temporal dev server, real worker, sandbox over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import CancelledError

from config.settings import OrchestratorSettings
from domain.common import SagaKind
from domain.stn import TerminationRequest
from sandbox.testing import SandboxAdmin
from starter import sagas
from tests.helpers import record_history, result_of, status_of, wait_for_phase
from worker import ProductWorkers

TERMINATE = "/api/TerminateSubscription"
CANCEL = "/api/CancelTerminateSubscription"
QUERY = "/api/QueryActivation"


def stn_calls(admin: SandboxAdmin, path: str, subscription_id: str) -> list[dict[str, Any]]:
    """Calls for one subscription (other tests' traffic is ignored)."""
    calls = admin.calls(provider="stn", path=path)
    if path == TERMINATE:
        return [
            c for c in calls if (c["requestBody"] or {}).get("subscriptionId") == subscription_id
        ]
    return calls


def cancelled_at_stn(state: dict[str, Any]) -> bool:
    """sTN's cancellation ended DONE and the termination, read afterwards, did not execute."""
    return bool(state["cancellationStatus"] == "DONE" and state["activationStatus"] != "DONE")


async def start(client: Client, settings: OrchestratorSettings, **fields: Any) -> sagas.StartedSaga:
    return await sagas.start(
        client, SagaKind.LINE_TERMINATION, TerminationRequest.model_validate(fields), settings
    )


async def test_immediate_termination_completes(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    subscription = f"SUB-{uid}"
    started = await start(client, settings, subscriptionId=subscription, customerId=f"C-{uid}")

    final = await result_of(client, started.workflow_id)

    assert final["phase"] == "COMPLETED"
    assert final["activationStatus"] == "DONE"
    assert final["submissions"] == 1
    assert final["providerChecks"] >= 1
    assert [s["step"] for s in final["steps"]][:4] == [
        "received",
        "submitting",
        "submitted",
        "waiting",
    ]
    assert final["steps"][-1]["step"] == "completed"
    terminates = stn_calls(sandbox_admin, TERMINATE, subscription)
    assert len(terminates) == 1
    body = terminates[0]["requestBody"]
    assert "wishDate" not in body and len(body["referenceNumber"]) <= 15
    await record_history(
        client.get_workflow_handle(started.workflow_id), "line_termination_completed"
    )


# Wall clock ~5 s: the 4 s wish date, then sTN's 1 s processing delay. Needed: the
# date must reach sTN over HTTP with no QueryActivation before it (call log); 2 s would
# do. The timer logic itself is in tests/fast.
async def test_termination_waits_for_wish_date(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    wish = datetime.now(UTC) + timedelta(seconds=4)
    started = await start(client, settings, subscriptionId=f"SUB-{uid}", wishDate=wish)

    waiting = await wait_for_phase(client, started.workflow_id, "WAITING")
    assert waiting["activationStatus"] == "BUSY"
    final = await result_of(client, started.workflow_id)

    assert final["phase"] == "COMPLETED"
    polling_step = next(s for s in final["steps"] if s["step"] == "polling")
    assert datetime.fromisoformat(polling_step["at"]) >= wish  # the timer held until the date
    terminate = stn_calls(sandbox_admin, TERMINATE, f"SUB-{uid}")[0]["requestBody"]
    assert datetime.fromisoformat(terminate["wishDate"]) == wish


async def test_phone_number_is_sent_dashed_and_kept_out_of_ids(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
) -> None:
    number = f"06{uuid_digits()}"
    started = await start(client, settings, phoneNumber=number)

    final = await result_of(client, started.workflow_id)

    assert final["phase"] == "COMPLETED"
    assert number not in started.workflow_id and number[2:] not in started.workflow_id
    assert final["phoneNumber"] == f"06-****{number[-4:]}"
    sent = [
        c
        for c in sandbox_admin.calls(provider="stn", path=TERMINATE)
        if (c["requestBody"] or {}).get("phoneNumber") == f"06-{number[2:]}"
    ]
    assert len(sent) == 1


def uuid_digits() -> str:
    import uuid

    return str(uuid.uuid4().int)[:8]


async def test_revoke_before_wish_date(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    subscription = f"SUB-{uid}"
    started = await start(
        client,
        settings,
        subscriptionId=subscription,
        wishDate=datetime.now(UTC) + timedelta(hours=1),
    )
    await wait_for_phase(client, started.workflow_id, "WAITING")

    state = await sagas.revoke(client, started.workflow_id, "customer stayed")

    # REVOKED only once sTN's asynchronous cancellation was DONE.
    assert state["phase"] == "REVOKED" and cancelled_at_stn(state)
    final = await result_of(client, started.workflow_id)
    assert final["phase"] == "REVOKED" and cancelled_at_stn(final)
    assert len(stn_calls(sandbox_admin, TERMINATE, subscription)) == 1
    cancels = [
        c
        for c in stn_calls(sandbox_admin, CANCEL, subscription)
        if c["requestBody"]["activationId"] == final["activationId"]
    ]
    assert len(cancels) == 1
    assert cancels[0]["requestBody"]["note"] == "customer stayed"
    await record_history(
        client.get_workflow_handle(started.workflow_id), "line_termination_revoked"
    )


async def test_revoke_whose_cancellation_stn_fails_is_refused_and_the_line_terminated(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    subscription = f"SUB-{uid}"
    sandbox_admin.stn_set_outcome(
        subscription, cancel_outcome="ERROR", cancel_message="Cancellation window closed"
    )
    # Real seconds: the termination executes at its wish date after the failed revoke.
    started = await start(
        client,
        settings,
        subscriptionId=subscription,
        wishDate=datetime.now(UTC) + timedelta(seconds=5),
    )
    await wait_for_phase(client, started.workflow_id, "WAITING")

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await sagas.revoke(client, started.workflow_id, "customer stayed")

    assert "Cancellation window closed" in str(refused.value.cause)
    state = await status_of(client, started.workflow_id)
    assert state["phase"] in ("WAITING", "POLLING") and state["cancellationStatus"] == "ERROR"
    assert "Cancellation window closed" in state["lastError"]
    final = await result_of(client, started.workflow_id)
    assert final["phase"] == "COMPLETED" and final["activationStatus"] == "DONE"
    assert len(stn_calls(sandbox_admin, TERMINATE, subscription)) == 1


async def test_revoke_refused_once_final(
    client: Client, worker: ProductWorkers, settings: OrchestratorSettings, uid: str
) -> None:
    started = await start(client, settings, subscriptionId=f"SUB-{uid}")
    await result_of(client, started.workflow_id)

    with pytest.raises(Exception) as refused:
        await sagas.revoke(client, started.workflow_id, None)

    # The run is closed: Temporal refuses the update before the workflow sees it.
    assert "complete" in str(refused.value).lower()


# Wall clock ~4 s: the new date is 3 s ahead and the run is awaited. Needed for the
# resubmitted date over HTTP; 1-2 s would do (the logic is in tests/fast).
async def test_reschedule_moves_the_termination(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    subscription = f"SUB-{uid}"
    started = await start(
        client,
        settings,
        subscriptionId=subscription,
        wishDate=datetime.now(UTC) + timedelta(days=7),
    )
    await wait_for_phase(client, started.workflow_id, "WAITING")
    first = await status_of(client, started.workflow_id)
    new_date = datetime.now(UTC) + timedelta(seconds=3)

    state = await sagas.reschedule(client, started.workflow_id, new_date)

    # Waiting for the new date, or, on a loaded machine, past it already when the answer
    # came (the phase at that moment is a matter of timing, not of behaviour).
    assert state["phase"] in ("WAITING", "POLLING")
    assert datetime.fromisoformat(state["wishDate"]) == new_date
    assert state["activationId"] != first["activationId"]
    final = await result_of(client, started.workflow_id)
    assert final["phase"] == "COMPLETED" and final["submissions"] == 2
    terminates = stn_calls(sandbox_admin, TERMINATE, subscription)
    assert [datetime.fromisoformat(t["requestBody"]["wishDate"]) for t in terminates] == [
        datetime.fromisoformat(first["wishDate"]),
        new_date,
    ]
    cancelled = [
        c
        for c in stn_calls(sandbox_admin, CANCEL, subscription)
        if c["requestBody"]["activationId"] == first["activationId"]
    ]
    assert len(cancelled) == 1


async def test_reschedule_to_the_past_is_refused(
    client: Client, worker: ProductWorkers, settings: OrchestratorSettings, uid: str
) -> None:
    started = await start(
        client,
        settings,
        subscriptionId=f"SUB-{uid}",
        wishDate=datetime.now(UTC) + timedelta(days=1),
    )
    await wait_for_phase(client, started.workflow_id, "WAITING")
    handle = client.get_workflow_handle(started.workflow_id)

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            "reschedule", {"wishDate": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}
        )

    assert "in the past" in str(refused.value.cause)
    state = await status_of(client, started.workflow_id)
    assert state["phase"] == "WAITING" and state["submissions"] == 1
    await sagas.revoke(client, started.workflow_id, "test cleanup")


async def test_provider_error_fails_with_reason(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    subscription = f"SUB-{uid}"
    sandbox_admin.stn_set_outcome(subscription, "ERROR", "SIM is blocked by the operator")
    started = await start(client, settings, subscriptionId=subscription)

    final = await result_of(client, started.workflow_id)

    assert final["phase"] == "FAILED"
    assert final["activationStatus"] == "ERROR"
    assert "SIM is blocked by the operator" in final["lastError"]
    await record_history(client.get_workflow_handle(started.workflow_id), "line_termination_failed")


@pytest.mark.own_sandbox  # a sandbox-wide fault
async def test_provider_rejection_fails_without_retrying(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    subscription = f"SUB-{uid}"
    sandbox_admin.add_fault(provider="stn", path=TERMINATE, mode="error", status=403, count=1)
    started = await start(client, settings, subscriptionId=subscription)

    final = await result_of(client, started.workflow_id)

    assert final["phase"] == "FAILED"
    assert "403" in final["lastError"]
    assert len(sandbox_admin.calls(provider="stn", path=TERMINATE, method="POST")) >= 1
    assert stn_calls(sandbox_admin, TERMINATE, subscription) and all(
        c["status"] == 403 for c in stn_calls(sandbox_admin, TERMINATE, subscription)
    )
    assert len(stn_calls(sandbox_admin, TERMINATE, subscription)) == 1


# Wall clock ~4 s: the 3 s wish date only keeps the first run open for the second
# request; a date days ahead and a revoke at the end would not wait at all.
async def test_duplicate_request_attaches_to_the_running_saga(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    subscription = f"SUB-{uid}"
    wish = datetime.now(UTC) + timedelta(seconds=3)
    first = await start(client, settings, subscriptionId=subscription, wishDate=wish)
    second = await start(client, settings, subscriptionId=subscription, wishDate=wish)

    assert not first.already_running and second.already_running
    assert second.workflow_id == first.workflow_id and second.run_id == first.run_id
    await result_of(client, first.workflow_id)
    runs = [w async for w in client.list_workflows(f"WorkflowId = '{first.workflow_id}'")]
    assert len(runs) == 1
    assert len(stn_calls(sandbox_admin, TERMINATE, subscription)) == 1


@pytest.mark.own_sandbox  # a sandbox-wide fault
async def test_lost_response_still_terminates_exactly_once(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    subscription = f"SUB-{uid}"
    sandbox_admin.add_fault(
        provider="stn", method="POST", path=TERMINATE, mode="drop_response", count=1
    )
    started = await start(client, settings, subscriptionId=subscription)

    final = await result_of(client, started.workflow_id)

    assert final["phase"] == "COMPLETED"
    terminates = stn_calls(sandbox_admin, TERMINATE, subscription)
    assert len(terminates) == 1 and terminates[0]["status"] == 504 and terminates[0]["applied"]
    assert any("lost response" in s["detail"] for s in final["steps"])


# Wall clock ~7 s: two 503s (retried after 1 s, 2 s), a 429 (Retry-After 1 s), sTN's
# processing delay. Needed: the retry policy against real HTTP answers.
@pytest.mark.own_sandbox  # sandbox-wide faults; counts every QueryActivation
async def test_transient_faults_are_retried(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    subscription = f"SUB-{uid}"
    sandbox_admin.add_fault(
        provider="stn", method="POST", path=TERMINATE, mode="error", status=503, count=2
    )
    sandbox_admin.add_fault(
        provider="stn", path=QUERY, mode="rate_limit", retryAfterSeconds=1, count=1
    )
    started = await start(client, settings, subscriptionId=subscription)

    final = await result_of(client, started.workflow_id)

    assert final["phase"] == "COMPLETED"
    statuses = [c["status"] for c in stn_calls(sandbox_admin, TERMINATE, subscription)]
    assert statuses == [503, 503, 200]
    assert 429 in [c["status"] for c in sandbox_admin.calls(provider="stn", path=QUERY)]


async def test_workflow_cancellation_compensates(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    subscription = f"SUB-{uid}"
    started = await start(
        client,
        settings,
        subscriptionId=subscription,
        wishDate=datetime.now(UTC) + timedelta(days=3),
    )
    waiting = await wait_for_phase(client, started.workflow_id, "WAITING")

    await sagas.cancel(client, started.workflow_id)

    with pytest.raises(WorkflowFailureError) as failure:
        await client.get_workflow_handle(started.workflow_id).result()
    assert isinstance(failure.value.cause, CancelledError)
    final = await status_of(client, started.workflow_id)
    assert final["phase"] == "REVOKED" and cancelled_at_stn(final)
    cancels = [
        c
        for c in sandbox_admin.calls(provider="stn", path=CANCEL)
        if c["requestBody"]["activationId"] == waiting["activationId"]
    ]
    assert len(cancels) == 1


# Wall clock ~2 s: a 2 s latency keeps the HTTP submit in flight while the workflow
# is cancelled. Needed for real HTTP; tests/fast holds the submit with a gate instead.
@pytest.mark.own_sandbox  # a sandbox-wide fault
async def test_cancellation_during_submit_undoes_what_stn_created(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    """The shielded-submit patch: a slow submit still in flight when the workflow is
    cancelled is waited for and then cancelled at sTN (before: FAILED, and the
    termination sTN created afterwards stayed and executed)."""
    subscription = f"SUB-{uid}"
    sandbox_admin.add_fault(
        provider="stn", method="POST", path=TERMINATE, mode="latency", latencySeconds=2, count=1
    )
    started = await start(client, settings, subscriptionId=subscription)
    await wait_for_phase(client, started.workflow_id, "SUBMITTING")

    await sagas.cancel(client, started.workflow_id)

    with pytest.raises(WorkflowFailureError) as failure:
        await client.get_workflow_handle(started.workflow_id).result()
    assert isinstance(failure.value.cause, CancelledError)
    final = await status_of(client, started.workflow_id)
    assert final["phase"] == "REVOKED" and cancelled_at_stn(final)
    terminates = stn_calls(sandbox_admin, TERMINATE, subscription)
    assert len(terminates) == 1 and terminates[0]["status"] == 200
    cancels = [
        c
        for c in sandbox_admin.calls(provider="stn", path=CANCEL)
        if c["requestBody"]["activationId"] == final["activationId"]
    ]
    assert len(cancels) == 1 and cancels[0]["status"] == 200
    await record_history(
        client.get_workflow_handle(started.workflow_id), "line_termination_cancelled_mid_submit"
    )
