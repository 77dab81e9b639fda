"""Start planned sagas on the cluster, wait until they settle, check what they did.

The plans and the checks are the reliability suite's (``reliability.workload``,
``reliability.invariants``): a plan knows the provider state it needs and the final
phase it must reach; the checks compare every run in the namespace with the
sandbox's call log and final state, and report a provider effect applied twice
(``one-effect``, ``compensation-once``, ``resent``) as a violation.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError

from config.settings import OrchestratorSettings
from domain.common import FINAL_PHASES, SagaKind
from reliability import invariants, observe
from reliability.invariants import Violation
from reliability.observe import RunRecord
from reliability.provider_state import Call, ProviderState, read_provider_state
from reliability.workload import SagaPlan, seed_sandbox, start
from stacks.cluster.stack import ClusterStack
from tests.helpers import eventually

#: Violations that mean a provider effect happened more than once.
DUPLICATE_RULES = frozenset({"one-effect", "compensation-once", "resent"})
SETTLE_SECONDS = 180.0


@dataclass
class Ledger:
    """What the session started, and the sandbox's call log of each of its lives (a
    restarted sandbox's log starts empty)."""

    accepted: set[str] = field(default_factory=set)
    kept_calls: list[Call] = field(default_factory=list)
    epoch: int = 0

    def keep_calls(self, records: list[dict[str, Any]]) -> None:
        """Before the sandbox restarts: its log so far becomes one more epoch."""
        self.kept_calls += [Call.from_log(self.epoch, record) for record in records]
        self.epoch += 1

    def calls(self, records: list[dict[str, Any]]) -> list[Call]:
        """The whole log: the kept epochs and the running sandbox's ``records``."""
        return self.kept_calls + [Call.from_log(self.epoch, record) for record in records]


def expected_phase(plan: SagaPlan) -> str:
    """Where a plan without operator requests ends: sTN's ``ERROR`` fails a line
    termination and makes a churn undo its other parts; everything else completes."""
    if plan.stn_error and plan.kind == SagaKind.LINE_TERMINATION:
        return "FAILED"
    if plan.stn_error and plan.kind == SagaKind.CUSTOMER_CHURN:
        return "COMPENSATED"
    return "COMPLETED"


async def start_plans(
    cluster: ClusterStack,
    client: Client,
    plans: list[SagaPlan],
    ledger: Ledger,
    tag: str,
    settings: OrchestratorSettings,
) -> dict[str, SagaPlan]:
    """Seed the sandbox for ``plans`` and start each through ``starter.sagas``."""
    with cluster.admin() as admin:
        await asyncio.to_thread(seed_sandbox, admin, plans, tag)
    started: dict[str, SagaPlan] = {}
    for plan in plans:
        saga = await start(client, plan, settings)
        assert not saga.already_running, f"{plan.label}: a saga of it was already open"
        started[saga.workflow_id] = plan
        ledger.accepted.add(saga.workflow_id)
    return started


async def phases(client: Client, workflow_ids: Iterable[str]) -> dict[str, str]:
    """Each saga's phase now (its ``status`` query)."""

    async def one(workflow_id: str) -> str:
        state: dict[str, Any] = await client.get_workflow_handle(workflow_id).query("status")
        return str(state["phase"])

    ids = list(workflow_ids)
    return dict(zip(ids, await asyncio.gather(*(one(i) for i in ids)), strict=True))


async def wait_for_phases(
    client: Client, workflow_ids: Iterable[str], *wanted: str, within: float = 60.0
) -> Counter[str]:
    """Until at least one saga is in each ``wanted`` phase; the phases at that moment."""

    async def check() -> Counter[str]:
        now = Counter((await phases(client, workflow_ids)).values())
        assert all(now[phase] for phase in wanted), f"phases {dict(now)}, want {wanted}"
        return now

    return await eventually(check, within=within, interval=0.3)


async def next_timer(client: Client, workflow_ids: Iterable[str]) -> datetime | None:
    """When the earliest durable timer still running in these sagas fires (from their
    histories: started, not yet fired or cancelled)."""

    async def pending(workflow_id: str) -> list[datetime]:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        started: dict[str, datetime] = {}
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
                attributes = event.timer_started_event_attributes
                fires = observe.event_time(event) + attributes.start_to_fire_timeout.ToTimedelta()
                started[attributes.timer_id] = fires
            elif event.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
                started.pop(event.timer_fired_event_attributes.timer_id, None)
            elif event.event_type == EventType.EVENT_TYPE_TIMER_CANCELED:
                started.pop(event.timer_canceled_event_attributes.timer_id, None)
        return list(started.values())

    lists = await asyncio.gather(*(pending(workflow_id) for workflow_id in workflow_ids))
    ahead = [fires for fired in lists for fires in fired if fires > datetime.now(UTC)]
    return min(ahead, default=None)


async def settle(client: Client, within: float = SETTLE_SECONDS) -> None:
    """Until no saga is open (visibility says so twice in a row), or fail."""

    def report(running: int, waiting: int) -> None:
        pass

    settled = await observe.wait_until_settled(client, within, report)
    assert settled, "sagas still open after the deadline"


@dataclass
class Findings:
    runs: list[RunRecord]
    provider: ProviderState
    violations: list[Violation]

    @property
    def duplicates(self) -> list[Violation]:
        return [v for v in self.violations if v.rule in DUPLICATE_RULES]

    def final_phases(self, workflow_ids: Iterable[str]) -> dict[str, str | None]:
        wanted = set(workflow_ids)
        return {run.workflow_id: run.phase for run in self.runs if run.workflow_id in wanted}


async def check_everything(cluster: ClusterStack, client: Client, ledger: Ledger) -> Findings:
    """Every run in the namespace against the sandbox's whole call log and state."""
    with cluster.admin() as admin:
        records = await asyncio.to_thread(admin.calls)
    provider = await read_provider_state(
        cluster.sandbox_url, cluster.state_file, ledger.calls(records)
    )
    runs = await _observe_all(client)
    violations, _benign = invariants.check(runs, provider, ledger.accepted)
    return Findings(runs, provider, violations)


async def _observe_all(client: Client, within: float = 60.0) -> list[RunRecord]:
    """``observe.observe_all``, patient while a just restarted part comes back."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await observe.observe_all(client)
        except RPCError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1.0)


def assert_final(findings: Findings, started: dict[str, SagaPlan]) -> Counter[str]:
    """Every saga in ``started`` ended where its plan says; the final phases, counted."""
    final = findings.final_phases(started)
    wrong = {
        workflow_id: (final.get(workflow_id), expected_phase(plan))
        for workflow_id, plan in started.items()
        if final.get(workflow_id) != expected_phase(plan)
    }
    assert not wrong, f"(ended, expected): {wrong}"
    assert all(phase in FINAL_PHASES for phase in final.values())
    return Counter(phase for phase in final.values() if phase is not None)


def worked_on_by(runs: Iterable[RunRecord], pid: int) -> set[str]:
    """The sagas a worker process completed workflow tasks of (its SDK identity is
    ``pid@host``)."""
    prefix = f"{pid}@"
    completed = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    return {
        run.workflow_id
        for run in runs
        if any(
            event.event_type == completed
            and event.workflow_task_completed_event_attributes.identity.startswith(prefix)
            for event in run.events
        )
    }


def figures(
    name: str, started: dict[str, SagaPlan], fault: str, finals: Counter[str], findings: Findings
) -> str:
    kinds = Counter(plan.kind.value for plan in started.values())
    return (
        f"{name}: {len(started)} sagas ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))});"
        f" fault: {fault}; final: {dict(sorted(finals.items()))}; "
        f"duplicates: {len(findings.duplicates)}; violations: {len(findings.violations)}"
    )
