"""CustomerChurn end to end: three providers, one durable transaction, compensated."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import CancelledError

from config.settings import OrchestratorSettings
from domain.churn import CustomerChurnRequest, ResolveAction
from domain.common import SagaKind
from domain.stn import TerminationRequest
from sandbox.testing import SandboxAdmin, SandboxServer
from starter import cli, sagas
from tests.helpers import eventually, record_history, result_of, status_of, wait_for_phase
from tests.worker_process import worker_process
from worker import ProductWorkers

ROOT = Path(__file__).parent.parent
TERMINATE = "/api/TerminateSubscription"
CANCEL_TERMINATION = "/api/CancelTerminateSubscription"


def soon(seconds: float = 5) -> datetime:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)


def days(n: float) -> datetime:
    return (datetime.now(UTC) + timedelta(days=n)).replace(second=0, microsecond=0)


class Parts:
    """One customer's provider state in the sandbox, and what the log says about it."""

    def __init__(self, admin: SandboxAdmin, uid: str, esim_due: list[datetime]) -> None:
        self.admin = admin
        self.customer = f"C-{uid}"
        self.subscription = f"SUB-{uid}"
        self.order = f"ORD-{uid}"
        self.esims = [
            admin.airalo_seed_future_order(f"pkg-{uid}", due, description=f"esim {i}")["request_id"]
            for i, due in enumerate(esim_due)
        ]

    def request(self, wish_date: datetime, **overrides: Any) -> CustomerChurnRequest:
        data: dict[str, Any] = {
            "customerId": self.customer,
            "wishDate": wish_date,
            "stn": {"subscriptionId": self.subscription},
            "rebilly": {"orderId": self.order, "reason": "did-not-use"},
            "airalo": {"requestIds": self.esims},
        }
        data.update(overrides)
        return CustomerChurnRequest.model_validate({k: v for k, v in data.items() if v})

    def terminates(self) -> list[dict[str, Any]]:
        return [
            c
            for c in self.admin.calls(provider="stn", path=TERMINATE)
            if (c["requestBody"] or {}).get("subscriptionId") == self.subscription
        ]

    def stn_cancels(self, activation_id: str) -> list[dict[str, Any]]:
        return [
            c
            for c in self.admin.calls(provider="stn", path=CANCEL_TERMINATION)
            if c["requestBody"]["activationId"] == activation_id
        ]

    def rebilly(self, method: str, cancellation_id: str) -> list[dict[str, Any]]:
        return self.admin.calls(
            provider="rebilly", method=method, path=f"/order-cancellations/{cancellation_id}"
        )

    def reactivations(self) -> list[dict[str, Any]]:
        return [
            c
            for c in self.admin.calls(provider="rebilly", path="/order-reactivations")
            if c["requestBody"]["orderId"] == self.order
        ]

    def airalo_cancels(self) -> list[list[str]]:
        return [
            c["requestBody"]["request_ids"]
            for c in self.admin.calls(provider="airalo", path="/v2/cancel-future-orders")
            if set(c["requestBody"]["request_ids"]) & set(self.esims)
        ]

    def recreations(self) -> list[dict[str, Any]]:
        return [
            c["requestBody"]
            for c in self.admin.calls(provider="airalo", method="POST", path="/v2/future-orders")
            if c["status"] == 200 and c["requestBody"]["package_id"].endswith(self.customer[2:])
        ]


async def start(
    client: Client, settings: OrchestratorSettings, request: CustomerChurnRequest
) -> str:
    started = await sagas.start(client, SagaKind.CUSTOMER_CHURN, request, settings)
    assert not started.already_running
    return started.workflow_id


# Wall clock ~6 s: the churn date 5 s ahead must outlast preparing three parts over
# HTTP, then sTN's 1 s delay; 2-3 s would likely do. Step order: tests/fast.
async def test_happy_path_ends_every_part_at_the_churn_date(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    parts = Parts(sandbox_admin, uid, [days(3), days(4)])
    wish = soon(5)
    workflow_id = await start(client, settings, parts.request(wish))

    waiting = await wait_for_phase(client, workflow_id, "WAITING")
    assert waiting["rebilly"]["status"] == "draft"  # billing waits for the pivot
    final = await result_of(client, workflow_id)

    assert final["phase"] == "COMPLETED", final["lastError"]
    assert final["stn"]["activationStatus"] == "DONE"
    assert final["rebilly"]["status"] == "completed"
    assert {o["outcome"] for o in final["airalo"]["outcomes"]} == {"CANCELLED"}
    steps = [s["step"] for s in final["steps"]]
    assert steps.index("line_terminated") < steps.index("billing_confirmed")
    assert [datetime.fromisoformat(t["requestBody"]["wishDate"]) for t in parts.terminates()] == [
        wish
    ]
    puts = parts.rebilly("PUT", final["rebilly"]["cancellationId"])
    assert [p["requestBody"]["status"] for p in puts] == ["draft", "confirmed"]
    assert datetime.fromisoformat(puts[1]["requestBody"]["churnTime"]) == wish
    assert parts.airalo_cancels() == [parts.esims]
    assert sandbox_admin.rebilly_get_order(parts.order)["churned"]
    await record_history(client.get_workflow_handle(workflow_id), "customer_churn_completed")


# Wall clock ~5 s: the churn date 4 s ahead, then sTN's delay; 2-3 s would likely do.
async def test_stn_error_after_the_date_undoes_billing_and_esims(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    parts = Parts(sandbox_admin, uid, [days(3), days(5)])
    sandbox_admin.stn_set_outcome(parts.subscription, "ERROR", "number is ported out")
    workflow_id = await start(client, settings, parts.request(soon(4)))

    final = await result_of(client, workflow_id)

    assert final["phase"] == "COMPENSATED"
    assert "number is ported out" in final["cause"]
    cancellation_id = final["rebilly"]["cancellationId"]
    assert [p["requestBody"]["status"] for p in parts.rebilly("PUT", cancellation_id)] == ["draft"]
    assert len(parts.rebilly("DELETE", cancellation_id)) == 1
    assert not sandbox_admin.rebilly_get_order(parts.order)["churned"]
    recreated = parts.recreations()
    assert sorted(r["description"] for r in recreated) == ["esim 0", "esim 1"]
    assert {r["originalRequestId"] for r in final["airalo"]["recreated"]} == set(parts.esims)
    assert sorted(final["undoneParts"]) == ["airalo", "rebilly", "stn"]
    await record_history(client.get_workflow_handle(workflow_id), "customer_churn_compensated")


async def test_revoke_before_the_date_undoes_each_part_once(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    wish = days(3)
    parts = Parts(sandbox_admin, uid, [days(2), days(6)])  # the first is due before the churn
    workflow_id = await start(client, settings, parts.request(wish))
    waiting = await wait_for_phase(client, workflow_id, "WAITING")
    kept, cancelled = parts.esims
    outcomes = {o["requestId"]: o["outcome"] for o in waiting["airalo"]["outcomes"]}
    assert outcomes == {kept: "KEPT", cancelled: "CANCELLED"}

    state = await sagas.revoke(client, workflow_id, "customer stayed")

    assert state["phase"] == "COMPENSATED" and "customer stayed" in state["cause"]
    # The line counts as undone only once sTN's cancellation was DONE.
    assert state["stn"]["cancellationStatus"] == "DONE"
    assert state["stn"]["activationStatus"] != "DONE"
    activation = state["stn"]["activationId"]
    assert len(parts.terminates()) == 1 and len(parts.stn_cancels(activation)) == 1
    assert len(parts.rebilly("DELETE", state["rebilly"]["cancellationId"])) == 1
    assert parts.airalo_cancels() == [[cancelled]]
    assert [r["description"] for r in parts.recreations()] == ["esim 1"]
    assert sandbox_admin.airalo_get_future_order(kept)["status"] == "pending"
    final = await result_of(client, workflow_id)
    assert final["phase"] == "COMPENSATED"
    await record_history(client.get_workflow_handle(workflow_id), "customer_churn_revoked")


@pytest.mark.own_sandbox  # a fault on sTN's QueryActivation
async def test_a_revoke_after_stn_executed_the_line_finishes_the_churn_instead(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    """Found by the reliability suite: sTN executed the line at the churn date while the
    saga could not read it (its last look said BUSY), so a revoke was accepted, and the
    saga re-created the eSIM orders and deleted the billing draft for a terminated line.
    Now the line is undone first; sTN refuses, and the churn goes forward instead."""
    parts = Parts(sandbox_admin, uid, [days(6)])
    sandbox_admin.configure(stn_processing_delay_seconds=1.0)
    wish = soon(3)
    sandbox_admin.add_fault(provider="stn", path="/api/QueryActivation", mode="error", status=503)
    workflow_id = await start(client, settings, parts.request(wish))
    await wait_for_phase(client, workflow_id, "POLLING")
    executed_by = wish + timedelta(seconds=1.0)

    async def stn_has_executed_it() -> None:
        assert datetime.fromisoformat(sandbox_admin.tick()) >= executed_by

    await eventually(stn_has_executed_it)
    revoking = asyncio.ensure_future(sagas.revoke(client, workflow_id, "customer stayed"))
    await wait_for_phase(client, workflow_id, "COMPENSATING")
    sandbox_admin.clear_faults()

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await revoking

    assert "too late: sTN had already terminated the line" in str(refused.value.cause)
    final = await result_of(client, workflow_id)
    assert final["phase"] == "COMPLETED", final["lastError"]
    assert final["stn"]["activationStatus"] == "DONE"
    assert final["rebilly"]["status"] == "completed"
    assert sandbox_admin.rebilly_get_order(parts.order)["churned"]
    assert parts.recreations() == []
    assert parts.rebilly("DELETE", final["rebilly"]["cancellationId"]) == []
    assert final["undoneParts"] == []
    await record_history(
        client.get_workflow_handle(workflow_id), "customer_churn_revoked_after_the_line_went"
    )


async def test_revoke_whose_line_cancellation_stn_fails_needs_attention(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    parts = Parts(sandbox_admin, uid, [days(6)])
    sandbox_admin.stn_set_outcome(
        parts.subscription, cancel_outcome="ERROR", cancel_message="Line is locked"
    )
    workflow_id = await start(client, settings, parts.request(days(3)))
    await wait_for_phase(client, workflow_id, "WAITING")

    state = await sagas.revoke(client, workflow_id, "customer stayed")

    # Not COMPENSATED: the termination stands, so the line is as good as terminated;
    # billing and eSIMs are held, not undone, for a line that may still go.
    assert state["phase"] == "NEEDS_ATTENTION"
    assert [(p["part"], p["kind"]) for p in state["pendingActions"]] == [
        ("stn", "undo"),
        ("airalo", "undo"),
        ("rebilly", "undo"),
    ]
    error = state["pendingActions"][0]["error"]
    assert "Line is locked" in error and "the line will be terminated" in error
    assert state["stn"]["cancellationStatus"] == "ERROR"
    assert parts.recreations() == []
    assert parts.rebilly("DELETE", state["rebilly"]["cancellationId"]) == []
    marked = await sagas.resolve(
        client, workflow_id, ResolveAction.MARK_HANDLED, "customer informed"
    )
    assert marked["phase"] == "COMPENSATED"


async def test_failed_and_retry_esim_orders_are_recorded_and_recreated_on_undo(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    """Airalo lists only pending orders unless asked for a status: the saga asks for
    failed and retry orders too, so it can record, cancel and re-create them."""
    parts = Parts(sandbox_admin, uid, [days(6), days(7)])
    failed, retry = parts.esims
    sandbox_admin.airalo_set_status(failed, "failed")
    sandbox_admin.airalo_set_status(retry, "retry")
    workflow_id = await start(client, settings, parts.request(days(3)))
    waiting = await wait_for_phase(client, workflow_id, "WAITING")
    outcomes = {o["requestId"]: o["outcome"] for o in waiting["airalo"]["outcomes"]}
    assert outcomes == {failed: "CANCELLED", retry: "CANCELLED"}
    reasons = {o["requestId"]: o["reason"] for o in waiting["airalo"]["outcomes"]}
    assert all(o["latestCancellationDate"] for o in waiting["airalo"]["outcomes"]), reasons

    state = await sagas.revoke(client, workflow_id, "customer stayed")

    assert state["phase"] == "COMPENSATED"
    recreated = {r["originalRequestId"] for r in state["airalo"]["recreated"] if r["requestId"]}
    assert recreated == {failed, retry}
    assert sorted(r["description"] for r in parts.recreations()) == ["esim 0", "esim 1"]


async def test_revoke_with_the_longest_reason_reaches_stn_fitted(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    """The churn sends "revoked: <reason>" as sTN's note (at most 164 characters): a
    reason cancelctl accepts must work, not fail the workflow task."""
    parts = Parts(sandbox_admin, uid, [])
    workflow_id = await start(client, settings, parts.request(days(3), airalo=None))
    await wait_for_phase(client, workflow_id, "WAITING")
    reason = "r" * 164

    state = await sagas.revoke(client, workflow_id, reason)

    assert state["phase"] == "COMPENSATED"
    note = parts.stn_cancels(state["stn"]["activationId"])[0]["requestBody"]["note"]
    assert len(note) == 164 and note.startswith("revoked: rrr") and note.endswith("…")


async def test_refused_line_is_undone_not_stuck(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    """sTN refuses the line (a termination is already pending): the undo note is built
    from sTN's message and must be fitted to sTN's limit, or the saga is stuck with
    the billing draft left behind."""
    parts = Parts(sandbox_admin, uid, [])
    pending = await sagas.start(
        client,
        SagaKind.LINE_TERMINATION,
        TerminationRequest(subscription_id=parts.subscription, wish_date=days(10)),
        settings,
    )
    await wait_for_phase(client, pending.workflow_id, "WAITING")
    workflow_id = await start(client, settings, parts.request(days(3), airalo=None))

    final = await result_of(client, workflow_id)

    assert final["phase"] == "COMPENSATED" and "pending" in final["cause"].lower()
    assert len(parts.rebilly("DELETE", final["rebilly"]["cancellationId"])) == 1
    notes = [
        c["requestBody"]["note"]
        for c in sandbox_admin.calls(provider="stn", path=CANCEL_TERMINATION)
    ]
    assert all(len(note) <= 164 for note in notes if note)
    await sagas.revoke(client, pending.workflow_id, None)


@pytest.mark.own_sandbox  # a sandbox-wide fault
async def test_failing_compensation_needs_attention_until_resolved(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    parts = Parts(sandbox_admin, uid, [days(6)])
    workflow_id = await start(client, settings, parts.request(days(3)))
    await wait_for_phase(client, workflow_id, "WAITING")
    sandbox_admin.add_fault(
        provider="airalo", method="POST", path="/v2/future-orders", mode="error", status=422
    )

    state = await sagas.revoke(client, workflow_id, "customer stayed")

    assert state["phase"] == "NEEDS_ATTENTION"
    assert [(p["part"], p["kind"]) for p in state["pendingActions"]] == [("airalo", "undo")]
    assert sorted(state["undoneParts"]) == ["rebilly", "stn"]
    still = await sagas.resolve(client, workflow_id, ResolveAction.RETRY, "first try")
    assert still["phase"] == "NEEDS_ATTENTION"  # the fault is still there
    with pytest.raises(WorkflowUpdateFailedError):
        await sagas.revoke(client, workflow_id, "again")  # only resolve is accepted now

    sandbox_admin.clear_faults()
    resolved = await sagas.resolve(client, workflow_id, ResolveAction.RETRY, "Airalo fixed")

    assert resolved["phase"] == "COMPENSATED" and resolved["pendingActions"] == []
    assert [r["description"] for r in parts.recreations()] == ["esim 0"]
    assert (await result_of(client, workflow_id))["phase"] == "COMPENSATED"


@pytest.mark.own_sandbox  # a sandbox-wide fault
async def test_mark_handled_closes_the_saga_with_the_note(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    parts = Parts(sandbox_admin, uid, [days(6)])
    workflow_id = await start(client, settings, parts.request(days(3), stn=None, rebilly=None))
    await wait_for_phase(client, workflow_id, "WAITING")
    sandbox_admin.add_fault(
        provider="airalo", method="POST", path="/v2/future-orders", mode="error", status=422
    )
    await sagas.revoke(client, workflow_id, None)
    monkeypatch.setenv("TEMPORAL_ADDRESS", client.service_client.config.target_host)

    code = await asyncio.to_thread(
        cli.main, ["resolve", workflow_id, "--mark-handled", "--note", "re-ordered by hand"]
    )

    assert code == 0 and capsys.readouterr().out.strip() == f"{workflow_id}: COMPENSATED"
    final = await result_of(client, workflow_id)
    assert any("re-ordered by hand" in s["detail"] for s in final["steps"])
    assert parts.recreations() == []


async def test_workflow_cancellation_compensates(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    parts = Parts(sandbox_admin, uid, [days(6)])
    workflow_id = await start(client, settings, parts.request(days(3)))
    waiting = await wait_for_phase(client, workflow_id, "WAITING")

    await sagas.cancel(client, workflow_id)

    with pytest.raises(WorkflowFailureError) as failure:
        await client.get_workflow_handle(workflow_id).result()
    assert isinstance(failure.value.cause, CancelledError)
    final = await status_of(client, workflow_id)
    assert final["phase"] == "COMPENSATED" and final["cause"] == "workflow cancelled"
    assert len(parts.stn_cancels(waiting["stn"]["activationId"])) == 1
    assert len(parts.rebilly("DELETE", waiting["rebilly"]["cancellationId"])) == 1
    assert len(parts.recreations()) == 1


async def test_reschedule_moves_every_part(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    parts = Parts(sandbox_admin, uid, [days(10)])
    workflow_id = await start(client, settings, parts.request(days(3)))
    waiting = await wait_for_phase(client, workflow_id, "WAITING")

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await sagas.reschedule(client, workflow_id, days(12))  # the eSIM order would move sides
    assert "fall between the old and the new date" in str(refused.value.cause)
    new_date = days(4)
    state = await sagas.reschedule(client, workflow_id, new_date)

    assert state["phase"] == "WAITING"
    assert datetime.fromisoformat(state["wishDate"]) == new_date
    assert state["stn"]["activationId"] != waiting["stn"]["activationId"]
    assert len(parts.stn_cancels(waiting["stn"]["activationId"])) == 1
    assert [datetime.fromisoformat(t["requestBody"]["wishDate"]) for t in parts.terminates()][
        -1
    ] == new_date
    puts = parts.rebilly("PUT", state["rebilly"]["cancellationId"])
    assert datetime.fromisoformat(puts[-1]["requestBody"]["churnTime"]) == new_date
    await sagas.revoke(client, workflow_id, "test cleanup")


@pytest.mark.own_sandbox  # counts every provider call
@pytest.mark.parametrize(
    ("argv", "problems"),
    [
        (
            ["--wish-date", "2020-01-01T00:00:00Z", "--phone", "12", "--esim-order", "short"],
            ["wishDate: must not be in the past", "stn.phoneNumber", "airalo.requestIds"],
        ),
        (["--wish-date", "2030-01-01T00:00:00Z"], ["give at least one part"]),
        (
            ["--wish-date", "2030-01-01T00:00:00Z", "--reason", "bored"],
            ["rebilly.orderId", "rebilly.reason"],
        ),
    ],
    ids=["several-parts-wrong", "no-part", "billing-without-order"],
)
async def test_invalid_churn_starts_nothing(
    client: Client,
    worker: ProductWorkers,
    sandbox_admin: SandboxAdmin,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    uid: str,
    argv: list[str],
    problems: list[str],
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", client.service_client.config.target_host)
    calls_before = len(sandbox_admin.calls())

    code = await asyncio.to_thread(cli.main, ["churn", f"C-{uid}", *argv])

    err = capsys.readouterr().err
    assert code == 2
    for problem in problems:
        assert problem in err
    runs = [w async for w in client.list_workflows(f"WorkflowId = 'churn-C-{uid}'")]
    assert runs == [] and len(sandbox_admin.calls()) == calls_before


# -- a worker killed mid-saga ------------------------------------------------------


@pytest.fixture
def spawn_worker(client: Client, sandbox: SandboxServer, task_queue: str) -> Iterator[Any]:
    """Start real worker processes (python worker.py) on this test's task queue."""
    with contextlib.ExitStack() as running:
        yield lambda: running.enter_context(worker_process(client, sandbox, task_queue))


# Wall clock ~18 s: two real worker processes start, and the date 8 s ahead must
# outlast the first one's start. Needed: a killed process is the point.
async def test_worker_killed_mid_saga_changes_nothing(
    client: Client,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    spawn_worker: Any,
    uid: str,
) -> None:
    parts = Parts(sandbox_admin, uid, [days(3)])
    first = spawn_worker()
    workflow_id = await start(client, settings, parts.request(soon(8)))
    await wait_for_phase(client, workflow_id, "WAITING", within=60)

    first.kill()
    spawn_worker()
    final = await asyncio.wait_for(result_of(client, workflow_id), timeout=120)

    assert final["phase"] == "COMPLETED", final["lastError"]
    assert len(parts.terminates()) == 1
    puts = parts.rebilly("PUT", final["rebilly"]["cancellationId"])
    assert [p["requestBody"]["status"] for p in puts] == ["draft", "confirmed"]
    assert parts.airalo_cancels() == [parts.esims]
    assert json.dumps(final).count("ERROR") == 0


# Wall clock ~5 s: a 3 s latency keeps the first eSIM batch in flight while the
# workflow is cancelled. Needed for real HTTP.
@pytest.mark.own_sandbox  # a sandbox-wide fault
async def test_cancellation_during_the_esim_step_undoes_exactly_what_was_cancelled(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    """12 orders: the first batch is slow (in flight when the saga is cancelled), the
    second is never sent; only the first batch's orders are re-created."""
    parts = Parts(sandbox_admin, uid, [days(3) + timedelta(minutes=i) for i in range(12)])
    sandbox_admin.add_fault(
        provider="airalo",
        path="/v2/cancel-future-orders",
        mode="latency",
        latencySeconds=3,
        count=1,
    )
    workflow_id = await start(client, settings, parts.request(days(2), stn=None, rebilly=None))

    async def cancel_call_in_flight() -> None:
        state = await status_of(client, workflow_id)
        assert any(o["outcome"] == "CANCELLING" for o in state["airalo"]["outcomes"])

    await eventually(cancel_call_in_flight)
    await sagas.cancel(client, workflow_id)

    with pytest.raises(WorkflowFailureError):
        await client.get_workflow_handle(workflow_id).result()
    final = await status_of(client, workflow_id)
    assert final["phase"] == "COMPENSATED"
    assert [len(batch) for batch in parts.airalo_cancels()] == [10]
    assert len(parts.recreations()) == 10
    assert len(final["airalo"]["recreated"]) == 10
