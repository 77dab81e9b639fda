"""One measured batch of sagas (a *phase*): the product's or the bare baseline's.

A phase starts ``count`` sagas of one :class:`Kind` (product LineTermination, or
:class:`bench.bare.BareSaga` with no-op or HTTP activities), optionally all due at
one wish date, waits until every one has closed, and returns the runs with the
server's start and close times plus each process's CPU seconds over the phase.
Phases of one benchmark run one after another on the same server; each is found
in visibility by its workflow type and its start time.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from temporalio.client import Client

from bench import bare, report
from bench.measure import Run, closed_runs, cpu_of, cpu_used, start_all, throughput
from bench.target import Bench
from config.settings import OrchestratorSettings
from domain.common import SagaKind
from domain.stn import TerminationRequest
from reliability.harness import TASK_QUEUE
from starter import sagas
from starter.kinds import KINDS


class Kind(StrEnum):
    PRODUCT = "product"
    BARE_NOOP = "bare, no-op activities"
    BARE_HTTP = "bare, same HTTP calls"
    BARE_HTTP_UPSERTS = "bare, same HTTP calls and search-attribute upserts"

    @property
    def workflow_type(self) -> str:
        product = KINDS[SagaKind.LINE_TERMINATION].workflow_type
        return product if self is Kind.PRODUCT else "BareSaga"


@dataclass
class Phase:
    kind: Kind
    label: str
    runs: list[Run]
    start_seconds: float
    cpu: dict[str, float]
    began: datetime
    subscriptions: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return throughput(self.runs)

    @property
    def starts_per_second(self) -> float:
        return len(self.runs) / self.start_seconds if self.start_seconds else 0.0

    def cpu_ms_per_saga(self, process: str) -> float:
        return 1000 * self.cpu.get(process, 0.0) / max(1, len(self.runs))

    def cpu_cell(self, process: str) -> str:
        """:meth:`cpu_ms_per_saga` for a table: ``-`` where the target has no such
        process (the dev server has no separate ``database``)."""
        return report.cpu_ms_per_saga(self.cpu, process, len(self.runs))

    @property
    def failed(self) -> int:
        return sum(1 for run in self.runs if run.status != "COMPLETED")


def subscription_ids(count: int) -> list[str]:
    """Fresh sTN subscriptions: every phase terminates lines nobody touched before."""
    tag = uuid.uuid4().hex[:8].upper()
    return [f"SUB-B{tag}-{i:06d}" for i in range(count)]


async def start_one(
    client: Client, kind: Kind, subscription: str, wish_date: datetime | None
) -> None:
    if kind is Kind.PRODUCT:
        request = TerminationRequest(subscription_id=subscription, wish_date=wish_date)
        settings = OrchestratorSettings(task_queue=TASK_QUEUE)
        await sagas.start(client, SagaKind.LINE_TERMINATION, request, settings)
        return
    await client.start_workflow(
        bare.BareSaga.run,
        bare.BareInput(
            subscription_id=subscription,
            reference_number=f"BB{subscription[-13:]}",
            wish_date=wish_date,
            http=kind in (Kind.BARE_HTTP, Kind.BARE_HTTP_UPSERTS),
            upserts=kind is Kind.BARE_HTTP_UPSERTS,
        ),
        id=f"bare-{subscription}",
        task_queue=bare.TASK_QUEUE,
    )


async def run_phase(
    bench: Bench,
    kind: Kind,
    count: int,
    *,
    label: str = "",
    wish_date: datetime | None = None,
    concurrency: int = 32,
    within: float = 1800.0,
    on_started: Callable[[int], None] | None = None,
) -> Phase:
    """Start ``count`` sagas of ``kind`` and wait until all have closed."""
    subscriptions = subscription_ids(count)
    bench.reset_sandbox()
    # Visibility's StartTime has a second's resolution on SQLite: a second of margin,
    # and the previous phase has closed by now, so nothing else matches.
    began = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    pids = bench.pids
    cpu_before = cpu_of(pids)

    started = 0

    async def start(index: int) -> None:
        nonlocal started
        await start_one(bench.client, kind, subscriptions[index], wish_date)
        started += 1
        if on_started is not None:
            on_started(started)

    start_seconds = await start_all(count, start, concurrency)
    query = f"WorkflowType = '{kind.workflow_type}' AND StartTime >= '{began.isoformat()}'"
    prefix = "terminate-" if kind is Kind.PRODUCT else "bare-"
    ids = {prefix + subscription for subscription in subscriptions}
    runs = await closed_runs(bench.client, query, ids, within=within, health=bench.check_alive)
    cpu = cpu_used(cpu_before, cpu_of(pids))
    return Phase(kind, label or kind.value, runs, start_seconds, cpu, began, subscriptions)


def elapsed_since(monotonic: float) -> float:
    return time.monotonic() - monotonic
