"""OrderCancellation end to end: real Temporal dev server, real worker, sandbox over HTTP."""

from __future__ import annotations

import asyncio
import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.exceptions import CancelledError
from temporalio.service import RPCError, RPCStatusCode

from activities.rebilly import rebilly_http_client
from config.settings import OrchestratorSettings, RebillySettings
from domain import search_attributes as sa
from domain.common import RevokeRequest, SagaKind
from domain.rebilly import REBILLY_ID_PATTERN, OrderCancellationRequest
from sandbox.testing import SandboxAdmin, SandboxServer
from starter import cli, sagas
from tests.helpers import eventually, record_history, result_of, status_of, wait_for_phase
from worker import ProductWorkers

# Paths in the sandbox's call log are relative to the organization's base URL.
CANCELLATIONS = "/order-cancellations"
REACTIVATIONS = "/order-reactivations"
ANY_CANCELLATION = r"/order-cancellations/[^/]+"


async def start(client: Client, settings: OrchestratorSettings, **fields: Any) -> sagas.StartedSaga:
    return await sagas.start(
        client,
        SagaKind.ORDER_CANCELLATION,
        OrderCancellationRequest.model_validate(fields),
        settings,
    )


def puts_for(admin: SandboxAdmin, order_id: str) -> list[dict[str, Any]]:
    return [
        c
        for c in admin.calls(provider="rebilly", method="PUT")
        if (c["requestBody"] or {}).get("orderId") == order_id
    ]


def reactivations_for(admin: SandboxAdmin, order_id: str) -> list[dict[str, Any]]:
    return [
        c
        for c in admin.calls(provider="rebilly", method="POST", path=REACTIVATIONS)
        if (c["requestBody"] or {}).get("orderId") == order_id
    ]


def calls_mentioning(admin: SandboxAdmin, order_id: str) -> list[dict[str, Any]]:
    return [
        c
        for c in admin.calls(provider="rebilly")
        if order_id in c["path"] or order_id in json.dumps(c["requestBody"] or {})
    ]


async def rebilly_cancellations(sandbox: SandboxServer, order_id: str) -> list[dict[str, Any]]:
    """What Rebilly itself lists for the order (GET /order-cancellations?filter=orderId:…)."""
    async with rebilly_http_client(RebillySettings(base_url=sandbox.rebilly_url)) as http:
        response = await http.get(CANCELLATIONS, params={"filter": f"orderId:{order_id}"})
    response.raise_for_status()
    listed: list[dict[str, Any]] = response.json()
    return listed


def at(call: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(call["at"])


# -- the happy paths ------------------------------------------------------------------


async def test_churn_now_completes(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox: SandboxServer,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    order = f"ORD-{uid}"
    started = await start(client, settings, orderId=order, customerId=f"C-{uid}")
    assert started.workflow_id == f"cancel-order-{order}"

    final = await result_of(client, started.workflow_id)

    assert final["phase"] == "COMPLETED" and final["rebillyStatus"] == "completed"
    assert final["submissions"] == 1 and final["lastError"] is None
    steps = [s["step"] for s in final["steps"]]
    assert steps[:4] == ["received", "submitting", "submitted", "waiting"] or steps[:4] == [
        "received",
        "submitting",
        "submitted",
        "completed",
    ]
    assert steps[-1] == "completed"
    cancellation_id = final["cancellationId"]
    assert len(cancellation_id) <= 50
    assert re.fullmatch(REBILLY_ID_PATTERN, cancellation_id)
    puts = puts_for(sandbox_admin, order)
    assert len(puts) == 1 and puts[0]["path"] == f"{CANCELLATIONS}/{cancellation_id}"
    assert puts[0]["requestBody"] == {
        "orderId": order,
        "status": "confirmed",
        "reason": "other",
        "canceledBy": "customer",
        "prorated": False,
        "lineItems": [],
    }
    listed = await rebilly_cancellations(sandbox, order)
    assert [(c["id"], c["status"]) for c in listed] == [(cancellation_id, "completed")]
    handle = client.get_workflow_handle(started.workflow_id)
    # The API key is a header built in the worker: never in the workflow's history.
    history = (await handle.fetch_history()).to_json()
    assert "sk_sandbox_rebilly" not in history and "REB-APIKEY" not in history
    await record_history(handle, "order_cancellation_completed")


# Wall clock ~3-4 s: the churn time 4 s ahead (whole seconds). Needed: no GET before
# the churn time in the call log; 2 s would do.
async def test_waits_for_the_churn_time_then_completes(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    order = f"ORD-{uid}"
    churn = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
    started = await start(client, settings, orderId=order, churnTime=churn)

    waiting = await wait_for_phase(client, started.workflow_id, "WAITING")
    assert waiting["rebillyStatus"] == "confirmed"
    assert datetime.fromisoformat(waiting["churnTime"]) == churn
    attributes = (
        await client.get_workflow_handle(started.workflow_id).describe()
    ).typed_search_attributes
    assert attributes.get(sa.CANCELLATION_KIND) == "ORDER_CANCELLATION"
    assert attributes.get(sa.CANCELLATION_PROVIDERS) == ["rebilly"]
    assert attributes.get(sa.WISH_DATE) == churn
    final = await result_of(client, started.workflow_id)

    assert final["phase"] == "COMPLETED" and final["providerChecks"] >= 1
    completed_at = datetime.fromisoformat(final["steps"][-1]["at"])
    assert completed_at >= churn
    polls = [
        c
        for c in sandbox_admin.calls(provider="rebilly", method="GET")
        if c["path"] == f"{CANCELLATIONS}/{final['cancellationId']}"
    ]
    # The durable timer did the waiting: no GET before the churn time.
    assert polls and all(at(c) >= churn for c in polls)
    assert len(puts_for(sandbox_admin, order)) == 1


@pytest.mark.own_sandbox  # a sandbox-wide fault
async def test_lost_put_response_makes_exactly_one_cancellation(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox: SandboxServer,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    order = f"ORD-{uid}"
    sandbox_admin.add_fault(
        provider="rebilly", method="PUT", path=ANY_CANCELLATION, mode="drop_response", count=1
    )
    started = await start(client, settings, orderId=order)

    final = await result_of(client, started.workflow_id)

    assert final["phase"] == "COMPLETED"
    puts = puts_for(sandbox_admin, order)
    # The only PUT reached Rebilly (applied) but its answer was lost (504) ...
    assert len(puts) == 1 and puts[0]["applied"] and puts[0]["status"] == 504
    # ... and the retry found the cancellation by our id instead of sending again.
    assert any("found after a lost response" in s["detail"] for s in final["steps"])
    listed = await rebilly_cancellations(sandbox, order)
    assert len(listed) == 1 and listed[0]["id"] == final["cancellationId"]


async def test_duplicate_request_attaches_to_the_running_saga(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    order = f"ORD-{uid}"
    churn = datetime.now(UTC) + timedelta(hours=1)
    first = await start(client, settings, orderId=order, churnTime=churn)
    second = await start(client, settings, orderId=order, churnTime=churn)

    assert second.already_running and second.workflow_id == first.workflow_id
    await wait_for_phase(client, first.workflow_id, "WAITING")
    assert len(puts_for(sandbox_admin, order)) == 1
    await sagas.revoke(client, first.workflow_id, "test cleanup")


# -- revoke ------------------------------------------------------------------------------


async def test_revoke_of_a_confirmed_cancellation_reactivates_once(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox: SandboxServer,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    order = f"ORD-{uid}"
    started = await start(
        client, settings, orderId=order, churnTime=datetime.now(UTC) + timedelta(hours=1)
    )
    await wait_for_phase(client, started.workflow_id, "WAITING")
    with pytest.raises(WorkflowUpdateFailedError) as not_draft:
        await sagas.confirm(client, started.workflow_id)
    assert "only a draft can be confirmed" in str(not_draft.value.cause)

    revoked = await sagas.revoke(client, started.workflow_id, "customer stayed")

    assert revoked["phase"] == "REVOKED" and revoked["rebillyStatus"] == "revoked"
    final = await result_of(client, started.workflow_id)
    assert final["phase"] == "REVOKED"
    reactivations = reactivations_for(sandbox_admin, order)
    assert len(reactivations) == 1
    assert reactivations[0]["requestBody"] == {"orderId": order, "description": "customer stayed"}
    listed = await rebilly_cancellations(sandbox, order)
    assert [(c["id"], c["status"]) for c in listed] == [(final["cancellationId"], "revoked")]
    await record_history(
        client.get_workflow_handle(started.workflow_id), "order_cancellation_revoked"
    )


async def test_revoke_refused_once_completed(
    client: Client, worker: ProductWorkers, settings: OrchestratorSettings, uid: str
) -> None:
    started = await start(client, settings, orderId=f"ORD-{uid}")
    await result_of(client, started.workflow_id)

    with pytest.raises(Exception) as refused:
        await sagas.revoke(client, started.workflow_id, None)

    # The run is closed: Temporal refuses the update before the workflow sees it.
    assert "complete" in str(refused.value).lower()


# Wall clock ~2 s: Rebilly (the sandbox) completes the cancellation at its churn time,
# 2 s ahead. Needed: Rebilly's own completion is what the revoke runs into.
@pytest.mark.own_sandbox  # a sandbox-wide fault
async def test_revoke_refused_with_a_reason_when_rebilly_completed_first(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    order = f"ORD-{uid}"
    churn = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    started = await start(client, settings, orderId=order, churnTime=churn)
    await wait_for_phase(client, started.workflow_id, "WAITING")
    # Rebilly completes at the churn time, but the saga cannot see it yet.
    sandbox_admin.add_fault(provider="rebilly", method="GET", path=ANY_CANCELLATION, mode="error")
    await wait_for_phase(client, started.workflow_id, "POLLING")

    async def churned() -> None:
        assert sandbox_admin.rebilly_get_order(order)["churned"]

    await eventually(churned)
    handle = client.get_workflow_handle(started.workflow_id)

    update = await handle.start_update(
        "revoke",
        RevokeRequest(reason="too late"),
        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
    )
    sandbox_admin.clear_faults()
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await update.result()

    reason = str(refused.value.cause)
    assert "cannot revoke: Rebilly already completed cancellation" in reason
    assert "cannot be undone" in reason
    final = await result_of(client, started.workflow_id)
    assert final["phase"] == "COMPLETED"
    assert reactivations_for(sandbox_admin, order) == []


# -- draft preview -----------------------------------------------------------------------


async def test_draft_reports_the_proration_and_completes_on_confirm(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    order = f"ORD-{uid}"
    sandbox_admin.rebilly_seed_order(
        order, next_renewal_time=datetime.now(UTC) + timedelta(days=10), amount=30, currency="EUR"
    )
    fee = {"type": "debit", "unitPriceAmount": 5, "unitPriceCurrency": "EUR", "quantity": 1}
    started = await start(
        client,
        settings,
        orderId=order,
        churnTimePolicy="now",
        prorated=True,
        lineItems=[fee],
        draft=True,
    )

    draft = await wait_for_phase(client, started.workflow_id, "WAITING")
    assert draft["rebillyStatus"] == "draft" and draft["awaitingConfirmation"]
    # 5.00 fee minus the pro-rata credit for ~10 of 30 days of 30.00 EUR.
    assert draft["lineItemSubtotal"] == {"amount": -5.0, "currency": "EUR"}
    assert "subtotal -5.00 EUR" in draft["steps"][-1]["detail"]

    confirmed = await sagas.confirm(client, started.workflow_id)

    assert confirmed["rebillyStatus"] in ("confirmed", "completed")
    final = await result_of(client, started.workflow_id)
    assert final["phase"] == "COMPLETED" and not final["awaitingConfirmation"]
    puts = puts_for(sandbox_admin, order)
    assert [p["requestBody"]["status"] for p in puts] == ["draft", "confirmed"]
    assert len({p["path"] for p in puts}) == 1  # the draft itself was confirmed
    await record_history(
        client.get_workflow_handle(started.workflow_id), "order_cancellation_draft_confirmed"
    )


async def test_revoked_draft_is_deleted_once(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox: SandboxServer,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    order = f"ORD-{uid}"
    started = await start(
        client, settings, orderId=order, churnTimePolicy="at-next-renewal", draft=True
    )
    draft = await wait_for_phase(client, started.workflow_id, "WAITING")
    assert draft["awaitingConfirmation"] and draft["churnTimePolicy"] == "at-next-renewal"

    revoked = await sagas.revoke(client, started.workflow_id, "just looking")

    assert revoked["phase"] == "REVOKED" and revoked["rebillyStatus"] is None
    deletes = sandbox_admin.calls(
        provider="rebilly", method="DELETE", path=f"{CANCELLATIONS}/{draft['cancellationId']}"
    )
    assert len(deletes) == 1 and deletes[0]["status"] == 204
    assert reactivations_for(sandbox_admin, order) == []
    assert await rebilly_cancellations(sandbox, order) == []


# -- provider errors ---------------------------------------------------------------------


@pytest.mark.own_sandbox  # a sandbox-wide fault
async def test_rejection_fails_with_the_providers_reason_without_retrying(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    order = f"ORD-{uid}"
    sandbox_admin.add_fault(
        provider="rebilly", method="PUT", path=ANY_CANCELLATION, mode="error", status=422, count=1
    )
    started = await start(client, settings, orderId=order)

    final = await result_of(client, started.workflow_id)

    assert final["phase"] == "FAILED"
    assert "Rebilly answered 422 to PUT" in final["lastError"]
    assert "Injected fault" in final["lastError"]
    assert len(puts_for(sandbox_admin, order)) == 1


async def test_a_repeat_after_the_order_churned_answers_with_that_saga(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    """Issue #10: a repeat used to start a second run, which Rebilly refused ("already
    churned") and which ended FAILED, hiding that the order was cancelled."""
    order = f"ORD-{uid}"
    first = await start(client, settings, orderId=order)
    assert (await result_of(client, first.workflow_id))["phase"] == "COMPLETED"

    again = await start(client, settings, orderId=order)

    assert again.already_completed and again.run_id == first.run_id
    assert len(puts_for(sandbox_admin, order)) == 1


async def test_a_repeat_read_before_the_saga_completed_still_answers_with_it(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    monkeypatch: pytest.MonkeyPatch,
    uid: str,
) -> None:
    """The reliability suite's concurrent copies under load: a copy read the business key
    before the first run existed (or while it ran), the run COMPLETED, then the copy
    started. With ALLOW_DUPLICATE that was a second run (FAILED: "already churned"); the
    start now refuses an existing run it did not read as closed, and reads it again."""
    order = f"ORD-{uid}"
    first = await start(client, settings, orderId=order)
    assert (await result_of(client, first.workflow_id))["phase"] == "COMPLETED"
    real = sagas.latest_run
    reads = []

    async def read_before_it_existed(client: Client, workflow_id: str) -> Any:
        reads.append(workflow_id)
        return None if len(reads) == 1 else await real(client, workflow_id)

    monkeypatch.setattr(sagas, "latest_run", read_before_it_existed)
    again = await start(client, settings, orderId=order)

    assert again.already_completed and again.run_id == first.run_id
    assert len(reads) == 2, "read again after the start was refused"
    runs = [run async for run in client.list_workflows(f"WorkflowId = '{first.workflow_id}'")]
    assert [run.run_id for run in runs] == [first.run_id]
    assert len(puts_for(sandbox_admin, order)) == 1


async def test_rebillys_own_conflict_fails_with_its_reason(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox: SandboxServer,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    order = f"ORD-{uid}"
    # The order was churned outside the product: another cancellation, at Rebilly itself.
    async with rebilly_http_client(RebillySettings(base_url=sandbox.rebilly_url)) as http:
        churned = await http.put(
            f"{CANCELLATIONS}/elsewhere-{uid}",
            json={"orderId": order, "status": "confirmed", "churnTimePolicy": "now"},
        )
    assert churned.status_code == 201, churned.text

    started = await start(client, settings, orderId=order)
    final = await result_of(client, started.workflow_id)

    assert final["phase"] == "FAILED"
    assert f"Order {order} is already churned" in final["lastError"]
    assert len(puts_for(sandbox_admin, order)) == 2  # theirs, and ours refused


# Wall clock ~2-3 s: Rebilly's X-RateLimit-Retry-After is an epoch second; honouring
# it is what is tested.
@pytest.mark.own_sandbox  # a sandbox-wide fault
async def test_rate_limit_is_retried_after_rebillys_epoch(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    order = f"ORD-{uid}"
    sandbox_admin.add_fault(
        provider="rebilly",
        method="PUT",
        path=ANY_CANCELLATION,
        mode="rate_limit",
        retryAfterSeconds=2,
        count=1,
    )
    started = await start(client, settings, orderId=order)

    final = await result_of(client, started.workflow_id)

    assert final["phase"] == "COMPLETED"
    puts = puts_for(sandbox_admin, order)
    assert [p["status"] for p in puts] == [429, 201]
    # X-RateLimit-Retry-After is the epoch second ceil(now + 2): not retried before it.
    retry_at = math.ceil(at(puts[0]).timestamp() + 2)
    assert at(puts[1]).timestamp() >= retry_at - 0.01


# -- cancellation and reschedule ---------------------------------------------------------


async def test_workflow_cancellation_compensates(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox: SandboxServer,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    order = f"ORD-{uid}"
    started = await start(
        client, settings, orderId=order, churnTime=datetime.now(UTC) + timedelta(days=3)
    )
    waiting = await wait_for_phase(client, started.workflow_id, "WAITING")

    await sagas.cancel(client, started.workflow_id)

    with pytest.raises(WorkflowFailureError) as failure:
        await client.get_workflow_handle(started.workflow_id).result()
    assert isinstance(failure.value.cause, CancelledError)
    final = await status_of(client, started.workflow_id)
    assert final["phase"] == "REVOKED" and final["rebillyStatus"] == "revoked"
    assert len(reactivations_for(sandbox_admin, order)) == 1
    listed = await rebilly_cancellations(sandbox, order)
    assert [(c["id"], c["status"]) for c in listed] == [(waiting["cancellationId"], "revoked")]
    await record_history(
        client.get_workflow_handle(started.workflow_id), "order_cancellation_compensated"
    )


# Wall clock ~2 s: a 2 s latency keeps the HTTP PUT in flight while the workflow is
# cancelled. Needed for real HTTP.
@pytest.mark.own_sandbox  # a sandbox-wide fault
async def test_cancellation_during_an_in_flight_put_undoes_what_it_made(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox: SandboxServer,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    order = f"ORD-{uid}"
    sandbox_admin.add_fault(
        provider="rebilly",
        method="PUT",
        path=ANY_CANCELLATION,
        mode="latency",
        latencySeconds=2,
        count=1,
    )
    started = await start(
        client, settings, orderId=order, churnTime=datetime.now(UTC) + timedelta(days=3)
    )

    async def put_in_flight() -> None:
        state = await status_of(client, started.workflow_id)
        assert state["phase"] == "SUBMITTING"
        assert sandbox_admin.faults()[0]["fired"] == 1

    await eventually(put_in_flight)
    await sagas.cancel(client, started.workflow_id)

    with pytest.raises(WorkflowFailureError):
        await client.get_workflow_handle(started.workflow_id).result()
    final = await status_of(client, started.workflow_id)
    assert final["phase"] == "REVOKED", final["steps"]
    assert len(puts_for(sandbox_admin, order)) == 1
    assert len(reactivations_for(sandbox_admin, order)) == 1
    listed = await rebilly_cancellations(sandbox, order)
    assert [c["status"] for c in listed] == ["revoked"]


async def test_reschedule_revokes_and_creates_a_new_cancellation(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox: SandboxServer,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    order = f"ORD-{uid}"
    started = await start(
        client, settings, orderId=order, churnTime=datetime.now(UTC) + timedelta(days=7)
    )
    first = await wait_for_phase(client, started.workflow_id, "WAITING")
    handle = client.get_workflow_handle(started.workflow_id)
    with pytest.raises(WorkflowUpdateFailedError) as past:
        await handle.execute_update(
            "reschedule", {"wishDate": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}
        )
    assert "in the past" in str(past.value.cause)

    new_time = (datetime.now(UTC) + timedelta(days=8)).replace(microsecond=0)
    moved = await sagas.reschedule(client, started.workflow_id, new_time)

    assert moved["phase"] == "WAITING" and moved["submissions"] == 2
    assert moved["cancellationId"] != first["cancellationId"]
    assert datetime.fromisoformat(moved["churnTime"]) == new_time
    listed = {c["id"]: c for c in await rebilly_cancellations(sandbox, order)}
    assert listed[first["cancellationId"]]["status"] == "revoked"
    assert listed[moved["cancellationId"]]["status"] == "confirmed"
    assert (
        datetime.fromisoformat(listed[moved["cancellationId"]]["churnTime"].replace("Z", "+00:00"))
        == new_time
    )
    assert len(reactivations_for(sandbox_admin, order)) == 1
    await sagas.revoke(client, started.workflow_id, "test cleanup")


async def test_rescheduling_a_draft_updates_it_in_place(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    order = f"ORD-{uid}"
    started = await start(client, settings, orderId=order, churnTimePolicy="now", draft=True)
    draft = await wait_for_phase(client, started.workflow_id, "WAITING")
    new_time = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)

    moved = await sagas.reschedule(client, started.workflow_id, new_time)

    assert moved["awaitingConfirmation"] and moved["cancellationId"] == draft["cancellationId"]
    assert moved["churnTimePolicy"] is None
    assert datetime.fromisoformat(moved["churnTime"]) == new_time
    puts = puts_for(sandbox_admin, order)
    assert [p["requestBody"].get("churnTimePolicy") for p in puts] == ["now", None]
    await sagas.revoke(client, started.workflow_id, "test cleanup")


# -- cancelctl ---------------------------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, client: Client, task_queue: str) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", client.namespace)
    monkeypatch.setenv("CANCEL_TASK_QUEUE", task_queue)


async def cancelctl(*argv: str) -> int:
    # The CLI runs its own event loop, so it gets a thread of its own.
    return await asyncio.to_thread(cli.main, list(argv))


async def test_draft_confirm_status_via_cli(
    cli_env: None,
    client: Client,
    worker: ProductWorkers,
    capsys: pytest.CaptureFixture[str],
    uid: str,
) -> None:
    order = f"ORD-{uid}"
    code = await cancelctl(
        "cancel-order",
        order,
        "--policy",
        "now",
        "--reason",
        "too-expensive",
        "--canceled-by",
        "merchant",
        "--description",
        "moving abroad",
        "--line-item",
        '{"type": "credit", "unitPriceAmount": 2.5, "unitPriceCurrency": "EUR", "quantity": 2}',
        "--draft",
        "--customer-id",
        f"C-{uid}",
    )
    workflow_id = capsys.readouterr().out.strip()
    assert code == 0 and workflow_id == f"cancel-order-{order}"
    await wait_for_phase(client, workflow_id, "WAITING")

    assert await cancelctl("status", workflow_id, "--json") == 0
    state = json.loads(capsys.readouterr().out)
    assert state["workflowType"] == "OrderCancellation" and state["rebillyStatus"] == "draft"
    assert state["lineItemSubtotal"]["amount"] == -5.0

    assert await cancelctl("confirm", workflow_id) == 0
    assert capsys.readouterr().out.strip().startswith(f"{workflow_id}: ")
    final = await result_of(client, workflow_id)
    assert final["phase"] == "COMPLETED"

    assert await cancelctl("confirm", workflow_id) == 1  # closed: refused
    capsys.readouterr()

    async def listed() -> None:
        assert await cancelctl("list", "--customer-id", f"C-{uid}") == 0
        out = capsys.readouterr().out
        assert workflow_id in out and "OrderCancellation" in out and "COMPLETED" in out

    await eventually(listed)


async def test_revoke_and_reschedule_via_cli(
    cli_env: None,
    client: Client,
    worker: ProductWorkers,
    capsys: pytest.CaptureFixture[str],
    uid: str,
) -> None:
    churn = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    assert await cancelctl("cancel-order", f"ORD-{uid}", "--churn-time", churn) == 0
    workflow_id = capsys.readouterr().out.strip()
    await wait_for_phase(client, workflow_id, "WAITING")

    later = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    assert await cancelctl("reschedule", workflow_id, "--wish-date", later) == 0
    assert capsys.readouterr().out.strip() == f"{workflow_id}: WAITING"

    assert await cancelctl("confirm", workflow_id) == 1
    assert "only a draft can be confirmed" in capsys.readouterr().err

    assert await cancelctl("revoke", workflow_id, "--reason", "customer stayed") == 0
    assert capsys.readouterr().out.strip() == f"{workflow_id}: REVOKED"


@pytest.mark.parametrize(
    ("argv", "field", "rule"),
    [
        (["--churn-time", "2020-01-01T00:00:00Z"], "churnTime", "must not be in the past"),
        (["--churn-time", "2030-01-01T00:00:00"], "churnTime", "UTC offset"),
        (
            ["--churn-time", "2030-01-01T00:00:00Z", "--policy", "now"],
            "churnTimePolicy",
            "not both",
        ),
        (["--policy", "tomorrow"], "churnTimePolicy", "'at-next-renewal'"),
        (["--reason", "bored"], "reason", "'too-expensive'"),
        (["--canceled-by", "robot"], "canceledBy", "'merchant'"),
        (["--description", "d" * 256], "description", "at most 255 characters"),
        (["--line-item", '{"type": "debit"}'], "lineItems.0.unitPriceAmount", "Field required"),
        (["--line-item", "{not json"], "lineItems.0", "not JSON"),
    ],
    ids=[
        "past-churn-time",
        "naive-churn-time",
        "time-and-policy",
        "bad-policy",
        "bad-reason",
        "bad-canceled-by",
        "long-description",
        "line-item-missing-fields",
        "line-item-not-json",
    ],
)
async def test_invalid_input_starts_nothing(
    cli_env: None,
    client: Client,
    worker: ProductWorkers,
    sandbox_admin: SandboxAdmin,
    capsys: pytest.CaptureFixture[str],
    uid: str,
    argv: list[str],
    field: str,
    rule: str,
) -> None:
    order = f"ORD-{uid}"

    code = await cancelctl("cancel-order", order, *argv)

    assert code == 2
    err = capsys.readouterr().err
    assert f"invalid {field}:" in err and rule in err
    with pytest.raises(RPCError) as missing:
        await client.get_workflow_handle(f"cancel-order-{order}").describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND
    assert calls_mentioning(sandbox_admin, order) == []
