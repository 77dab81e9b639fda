"""Benchmark: a month-end bulk reschedule against one ``cancelctl reschedule`` at a time.

``python -m bench.bulk [--sagas 10000] [--singles 300]``: sTN terminations due in two
days, all waiting; then, in the same run on the same stack:

* **one by one**: ``--singles`` of them rescheduled with ``starter.sagas.reschedule``
  one after the other, as an operator's shell loop over ``cancelctl reschedule``
  would (the same function, without a process per call);
* **bulk**: every other one moved by one ``BulkOperation`` (``cancelctl bulk
  reschedule``), its batches and pace its own (no lane limit is set here, so it is
  not paced; each batch of 25 is steered at once).

Each reschedule is a real one: sTN is asked to cancel the termination, the
cancellation followed, the line resubmitted for the new date. Rate: sagas moved over
the seconds from the first request to the last answer (the bulk operation: its own
start to its report). Ratio: bulk over one by one. Timings here only, never in tests.
"""

from __future__ import annotations

import argparse
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bench import cli, report
from bench.measure import cpu_of, cpu_used, start_all, wait_for_count
from bench.target import Bench, running
from config.settings import OrchestratorSettings
from domain.bulk import BulkAction, BulkRequest, SagaOutcome, Selection
from domain.common import SagaKind, SagaPhase
from domain.stn import TerminationRequest
from reliability.harness import TASK_QUEUE
from starter import bulk, sagas

SETTINGS = OrchestratorSettings(task_queue=TASK_QUEUE)


@dataclass(frozen=True)
class Moved:
    way: str
    sagas: int
    seconds: float
    cpu: dict[str, float]

    @property
    def rate(self) -> float:
        return self.sagas / self.seconds

    def cpu_ms(self, process: str) -> str:
        return report.cpu_ms_per_saga(self.cpu, process, self.sagas)


async def waiting_lines(bench: Bench, tag: str, count: int) -> list[str]:
    """``count`` terminations of customer ``tag`` waiting for a date two days ahead."""
    wish = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    ids: list[str] = []

    async def one(index: int) -> None:
        request = TerminationRequest(
            subscription_id=f"SUB-B{tag}-{index:06d}", wish_date=wish, customer_id=tag
        )
        started = await sagas.start(bench.client, SagaKind.LINE_TERMINATION, request, SETTINGS)
        ids.append(started.workflow_id)

    await start_all(count, one, concurrency=32)
    waiting = Selection(customer_id=tag, status=SagaPhase.WAITING).visibility_query(TASK_QUEUE)
    await wait_for_count(
        bench.client, waiting, count, within=1800, what="waiting", health=bench.check_alive
    )
    return ids


async def one_by_one(bench: Bench, ids: list[str], new_date: datetime) -> Moved:
    pids = bench.pids
    before = cpu_of(pids)
    began = time.monotonic()
    for workflow_id in ids:
        await sagas.reschedule(bench.client, workflow_id, new_date)
    seconds = time.monotonic() - began
    cpu = cpu_used(before, cpu_of(pids))
    return Moved("one by one (cancelctl reschedule)", len(ids), seconds, cpu)


async def measure(bench: Bench, count: int, singles: int) -> list[Moved]:
    bench.reset_sandbox()
    tag = f"BULK{uuid.uuid4().hex[:8].upper()}"
    ids = await waiting_lines(bench, tag, count + singles)
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    later = soon + timedelta(hours=1)
    single = await one_by_one(bench, ids[:singles], soon)
    # The ones moved singly now wait for `soon`; the bulk takes those still due in two
    # days and moves them to `later`, outside its own selection.
    selection = Selection(
        customer_id=tag, status=SagaPhase.WAITING, due_after=later + timedelta(minutes=1)
    )
    await wait_for_count(
        bench.client,
        selection.visibility_query(TASK_QUEUE),
        count,
        within=300,
        what="still waiting",
    )
    return [single, await in_bulk(bench, selection, count, later)]


async def in_bulk(bench: Bench, selection: Selection, count: int, new_date: datetime) -> Moved:
    """One bulk operation over ``selection`` to ``new_date``: every saga must apply."""
    request = BulkRequest(action=BulkAction.RESCHEDULE, selection=selection, wish_date=new_date)
    pids = bench.pids
    before = cpu_of(pids)
    began = time.monotonic()
    started = await bulk.start_bulk(bench.client, request, SETTINGS)
    handle = await bulk.operation_handle(bench.client, SETTINGS, started.operation_id)
    outcome = await handle.result()
    seconds = time.monotonic() - began
    applied = outcome.counts.get(SagaOutcome.APPLIED, 0)
    if applied != count:
        raise RuntimeError(f"bulk reschedule applied {applied} of {count}: {outcome.counts}")
    cpu = cpu_used(before, cpu_of(pids))
    return Moved("bulk (cancelctl bulk reschedule)", count, seconds, cpu)


def table(results: list[Moved]) -> str:
    single = results[0].rate
    rows = [
        [
            r.way,
            str(r.sagas),
            f"{r.rate:.1f}",
            f"{r.rate / single:.2f}x",
            r.cpu_ms("server"),
            r.cpu_ms("database"),
            r.cpu_ms("worker"),
        ]
        for r in results
    ]
    return report.markdown_table(
        [
            "way",
            "sagas rescheduled",
            "sagas/s",
            "vs one by one",
            "server CPU ms/saga",
            "database CPU ms/saga",
            "worker CPU ms/saga",
        ],
        rows,
    )


async def main(args: argparse.Namespace) -> str:
    async with running(args.target) as bench:
        results = await measure(bench, args.sagas, args.singles)
    section = report.Section(
        "bulk",
        "9. Bulk reschedule against one reschedule at a time",
        f"python -m bench.bulk --sagas {args.sagas} --singles {args.singles}",
        __doc__ or "",
        table(results),
    )
    return report.publish(section, args.target)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = cli.parser("python -m bench.bulk", __doc__)
    parser.add_argument("--sagas", type=int, default=10_000, help="sagas the bulk operation moves")
    parser.add_argument("--singles", type=int, default=300, help="sagas moved one by one")
    return parser.parse_args(argv)


if __name__ == "__main__":
    cli.run(main(parse_args()))
