"""The reliability suite (``make reliability``), small: its harness and its checks.

``test_smoke_run_finds_nothing_lost_or_doubled`` runs two scenarios of the real suite
(its own dev server, sandbox, worker and API as processes; a worker SIGKILLed
mid-run; duplicate storms through every entry point) with a handful of sagas and
short outages, and asserts zero violations. The checks' own tests beside it feed
them a provider state with a known defect and assert they report it: a suite that
reports nothing because it looks at nothing would pass the smoke run too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from reliability import outcomes as outcome_invariant
from reliability.invariants import check
from reliability.observe import RunRecord
from reliability.provider_state import Call, ProviderState
from reliability.run import Options
from reliability.scenarios import BY_NAME
from reliability.suite import run_suite
from sandbox.airalo import FutureOrder
from sandbox.stn import Activation

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


# -- the checks, fed a known defect ------------------------------------------------------


def run(workflow_type: str, start_input: dict[str, Any], status: dict[str, Any]) -> RunRecord:
    return RunRecord(
        workflow_id=f"{workflow_type}-{len(start_input)}",
        run_id="run-1",
        workflow_type=workflow_type,
        execution_status="COMPLETED",
        started=NOW,
        closed=NOW + timedelta(seconds=5),
        events=[],
        start_input=start_input,
        status=status,
    )


def termination(activation_id: str, line: str, status: str) -> Activation:
    return Activation(
        id=activation_id,
        seq=1,
        created_at=NOW,
        modified_at=NOW,
        subscription_id=line,
        phone_number=None,
        scheduled_at=NOW,
        status=status,
    )


def call(seq: int, path: str, body: dict[str, Any], status: int, **extra: Any) -> Call:
    defaults: dict[str, Any] = {"fault": None, "applied": 200 <= status < 300}
    return Call(
        epoch=0,
        seq=seq,
        at=NOW + timedelta(seconds=seq),
        provider=extra.pop("provider", "stn"),
        method="POST",
        path=path,
        status=status,
        body=body,
        **{**defaults, **extra},
    )


def state(**parts: Any) -> ProviderState:
    return ProviderState(
        calls=parts.get("calls", []),
        activations=parts.get("activations", []),
        cancellations=[],
        reactivations=[],
        future_orders=parts.get("future_orders", {}),
    )


def rules(runs: list[RunRecord], provider: ProviderState) -> list[str]:
    violations, _benign = check(runs, provider, {r.workflow_id for r in runs})
    return sorted(v.rule for v in violations)


def test_a_line_terminated_behind_a_failed_saga_is_reported() -> None:
    failed = run(
        "LineTermination",
        {"subscriptionId": "SUB-1"},
        {"phase": "FAILED", "activationId": "A1", "activationStatus": "ERROR"},
    )
    done = state(activations=[termination("A1", "SUB-1", "DONE")])

    assert rules([failed], done) == ["lost-effect"]
    completed = run(
        "LineTermination",
        {"subscriptionId": "SUB-1"},
        {"phase": "COMPLETED", "activationId": "A1", "activationStatus": "DONE"},
    )
    assert rules([completed], done) == []
    assert rules([completed], state(activations=[termination("A1", "SUB-1", "ERROR")])) == [
        "completed-by-provider"
    ]


def test_a_submit_sent_again_after_stn_applied_it_is_reported() -> None:
    body = {"subscriptionId": "SUB-2", "referenceNumber": "CO123"}
    path = "/api/TerminateSubscription"
    lost = call(1, path, body, 504, applied=True)  # applied, its answer lost
    refused_again = call(2, path, body, 400)  # "already has a pending termination"
    injected = call(2, path, body, 503, fault="fault-1")
    saga = run(
        "LineTermination",
        {"subscriptionId": "SUB-2"},
        {"phase": "COMPLETED", "activationId": "A2", "activationStatus": "DONE"},
    )
    line = [termination("A2", "SUB-2", "DONE")]

    assert rules([saga], state(activations=line, calls=[lost, refused_again])) == ["resent"]
    assert rules([saga], state(activations=line, calls=[lost, injected])) == []


def test_a_compensation_applied_twice_is_reported() -> None:
    due = NOW + timedelta(days=4)
    order = FutureOrder(
        request_id="R" * 25,
        seq=1,
        package_id="pkg",
        quantity=1,
        due_date=due,
        description="esim 1",
        created_at=NOW,
        status="cancelled",
    )
    copy = FutureOrder(**{**order.__dict__, "request_id": "N" * 25, "status": "pending"})
    churn = run(
        "CustomerChurn",
        {"customerId": "C-1", "airalo": {"requestIds": ["R" * 25]}},
        {
            "phase": "COMPENSATED",
            "airalo": {
                "outcomes": [{"requestId": "R" * 25, "outcome": "CANCELLED", "reason": ""}],
                "recreated": [{"originalRequestId": "R" * 25, "requestId": "N" * 25}],
            },
        },
    )
    body = {"due_date": due.strftime("%Y-%m-%d %H:%M"), "description": "esim 1"}
    cancel = call(
        1, "/v2/cancel-future-orders", {"request_ids": ["R" * 25]}, 200, provider="airalo"
    )
    create = [call(n, "/v2/future-orders", body, 200, provider="airalo") for n in (2, 3)]
    orders = {order.request_id: order, copy.request_id: copy}

    assert rules([churn], state(future_orders=orders, calls=[cancel, *create])) == [
        "compensation-once"
    ]
    assert rules([churn], state(future_orders=orders, calls=[cancel, create[0]])) == []


def test_a_churn_that_undoes_billing_after_stn_executed_the_line_is_reported() -> None:
    """The pivot: once sTN executed the line, billing is finished, never undone."""

    def churn(undone: list[str]) -> RunRecord:
        record = run(
            "CustomerChurn",
            {"customerId": "C-4", "stn": {"subscriptionId": "SUB-4"}},
            {
                "phase": "NEEDS_ATTENTION",
                "stn": {"activationId": "A4", "activationStatus": "BUSY"},
                "undoneParts": undone,
                "pendingActions": [{"part": "stn", "kind": "undo"}],
                "lastError": "could not undo: stn: already executed",
                "cause": "revoked",
            },
        )
        record.execution_status = "RUNNING"
        return record

    line = state(activations=[termination("A4", "SUB-4", "DONE")])

    assert rules([churn(["rebilly"])], line) == ["pivot"]
    assert rules([churn([])], line) == []  # it owes the line, and says so


def test_a_saga_left_open_or_never_run_is_reported() -> None:
    waiting = run("LineTermination", {"subscriptionId": "SUB-3"}, {"phase": "WAITING"})
    waiting.execution_status = "RUNNING"

    violations, _ = check([waiting], state(), {waiting.workflow_id, "terminate-lost"})

    assert sorted((v.key, v.rule) for v in violations) == sorted(
        [(waiting.workflow_id, "final"), ("terminate-lost", "lost")]
    )


# -- the real thing, small -------------------------------------------------------------


async def test_smoke_run_finds_nothing_lost_or_doubled(tmp_path: Path) -> None:
    """Two scenarios side by side, eight sagas each, short outages: ~30 s of wall clock,
    most of it waiting on wish dates (up to 10 s) and on the workflow task the killed
    worker held (retried after Temporal's 10 s workflow task timeout)."""
    report = tmp_path / "reliability.md"
    scenarios = [BY_NAME["worker-crashes"], BY_NAME["duplicate-storms"]]

    results = await run_suite(
        scenarios,
        Options(sagas=8, seed=11, quick=True, settle_seconds=120),
        report=report,
        command="pytest tests/test_reliability_smoke.py",
        workdir=tmp_path / "work",
        concurrently=True,
    )

    for result in results:
        assert result.error is None, result.error
        assert result.violations == [], [str(v) for v in result.violations]
        assert result.sagas >= 8 and result.runs >= result.sagas
        assert not ({"RECEIVED", "SUBMITTING", "WAITING", "POLLING"} & set(result.final_states))
    crashes = results[0]
    # One random kill, and one while the outcome subscriber takes the retried deliveries.
    assert crashes.crashes == 2 and crashes.recovery.samples
    for result in results:
        # Every final saga's outcome reached the subscriber, which was down at first
        # (no outcome-lost/-doubled violation above); here: it did refuse some, and
        # accepted at least one event per saga.
        notes = dict(note.split(": ", 1) for note in result.notes if ": " in note)
        assert int(notes["outcome events accepted (after dedupe)"]) >= result.sagas
        assert int(notes["outcome attempts refused while the subscriber was down"]) >= 1
    # The dev servers kept their databases in write-ahead-log mode (config.temporal_cli):
    # a SQLite header's read/write format versions are 2 for WAL, 1 for a rollback journal.
    databases = list((tmp_path / "work").rglob("temporal.db"))
    assert databases and all(db.read_bytes()[18:20] == b"\x02\x02" for db in databases)
    text = report.read_text()
    assert "Violations: **0**" in text
    assert "| worker-crashes | 8 |" in text and "| duplicate-storms | 8 |" in text


def test_the_outcome_check_reports_a_lost_and_a_doubled_outcome() -> None:
    completed = run("LineTermination", {"subscriptionId": "SUB-1"}, {"phase": "COMPLETED"})
    revoked = run(
        "LineTermination", {"subscriptionId": "SUB-2", "customerId": "C-2"}, {"phase": "REVOKED"}
    )

    def accepted(subject: str, event_type: str, webhook_id: str) -> dict[str, Any]:
        return {"subject": subject, "type": event_type, "webhookId": webhook_id}

    received = {
        # The revoked saga's outcome under two ids (doubled); the completed one's: none.
        "events": [
            accepted(revoked.workflow_id, "saga.revoked", "evt_a"),
            accepted(revoked.workflow_id, "saga.revoked", "evt_b"),
        ],
        "attempts": [{"verified": True}, {"verified": False}],
    }

    violations = outcome_invariant.check([completed, revoked], received)

    assert sorted((v.key, v.rule) for v in violations) == [
        (completed.workflow_id, "outcome-lost"),
        (revoked.workflow_id, "outcome-doubled"),
        ("reliability", "outcome-unsigned"),
    ]
    assert (
        outcome_invariant.check(
            [revoked], {"events": received["events"][:1], "attempts": [{"verified": True}]}
        )
        == []
    )
