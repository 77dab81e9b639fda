"""Benchmark 7: month-end at scale: 100,000 sagas pending at once, a wave of 10,000 of them.

``python -m bench.scale [--pending 100000] [--chunk 10000] [--wave 10000]
[--limits stn=20,rebilly=10,airalo=5]`` (on the cluster: ``make bench TARGET=cluster``):

1. **Pending.** ``--pending`` minus ``--wave`` sTN terminations with wish dates days
   ahead (each submits to sTN at once, as bulk work, then waits on its timer) are
   started in chunks of ``--chunk`` (32 start requests in flight); a chunk is done
   when all its sagas wait (``CancellationStatus = 'WAITING'``). Per chunk: start
   requests/s (the client's side), sagas settled per second (its first start until the
   last of it waits), the worker's RSS, and Temporal's persistence on disk (the
   cluster's two PostgreSQL databases, ``pg_database_size``; the dev server's SQLite
   file and its write-ahead log).
2. **The wave.** With every lane's limit set at run time (``--limits``, as
   ``cancelctl lanes set`` does), ``--wave`` more sTN terminations are started due at
   one wish date (``bench.wave``: set ``--wave / rate + 20 s`` ahead, ``rate`` 0.85 of
   the last chunk's settle rate, at most sTN's limit), so that for a moment
   ``--pending`` sagas wait at once: then the footprint is read (persistence on disk,
   worker RSS). Then they fall due together; their first polls are spread over the
   window sTN's limit calls for (``domain/lanes.py``). The lanes' limits are removed,
   and **bare Temporal** (``bench/bare.py``: submit, timer, poll, no lanes, no spread)
   runs a wave of the same size the same way, beside the same pending sagas.

Between chunks and before each wave the sandbox forgets its state (``Bench.
reset_sandbox``): it scans every termination it holds on every request, a cost of
the test double that grows with the sagas it holds; the pending sagas' terminations
would only be looked at on their wish dates, days later.

Reported: the chunks; the footprint per pending saga (bytes on disk; CPU
milliseconds per saga of the server, the database, the worker and the sandbox while
the pending sagas were started; Temporal's state transitions and history events per
pending saga, from one of them); the waves as ``bench.wave`` reports them (lateness
p50/p99, drain rate and its ratio to bare's), and per saga of each wave its CPU
milliseconds and state transitions over its whole life (start, submit, timer, poll,
close). docs/performance.md extrapolates to 1,000,000 pending sagas from these.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bench import cli, report
from bench.lane_rates import LIMITS, by_provider, spec
from bench.measure import cpu_of, cpu_used, start_all, wait_for_count
from bench.phases import Kind, start_one, subscription_ids
from bench.target import Bench, running
from bench.wave import SAFETY, VARIANTS, Variant, WaveResult, one_wave
from bench.wave import table as wave_table
from domain.common import Provider
from domain.lanes import observation_spread
from reliability.harness import TASK_QUEUE
from starter.lanes import set_lane_limit

#: The pending sagas' wish date: days ahead (their submits are bulk work).
DAYS_AHEAD = timedelta(days=3)
WAITING = f"WorkflowType = '{Kind.PRODUCT.workflow_type}' AND CancellationStatus = 'WAITING'"
PROCESSES = ("server", "database", "worker", "sandbox")
MIB = 1024 * 1024


@dataclass(frozen=True)
class Chunk:
    pending: int
    sagas: int
    starts_per_second: float
    settled_per_second: float
    worker_rss: float
    database_bytes: int


@dataclass(frozen=True)
class RunSize:
    """One saga's size in Temporal (``DescribeWorkflowExecution``)."""

    state_transitions: int
    events: int
    history_bytes: int


@dataclass
class Footprint:
    """The pending sagas: their cost to start and settle, and what they take."""

    background: int = 0
    cpu: dict[str, float] = field(default_factory=dict)
    run: RunSize | None = None
    database_before: int = 0
    #: Read once every saga, the wave's too, waited at once (None: that never happened).
    pending: int = 0
    database_pending: int | None = None
    worker_rss_pending: float | None = None


async def size_of(bench: Bench, workflow_id: str) -> RunSize:
    described = await bench.client.get_workflow_handle(workflow_id).describe()
    info = described.raw_description.workflow_execution_info
    return RunSize(info.state_transition_count, info.history_length, info.history_size_bytes)


def worker_rss(bench: Bench) -> float:
    return bench.pids["worker"].rss_mib() or 0.0


async def start_pending(
    bench: Bench, subscriptions: list[str], wish_date: datetime, index: int
) -> None:
    await start_one(bench.client, Kind.PRODUCT, subscriptions[index], wish_date)


async def pend(bench: Bench, count: int, chunk: int, footprint: Footprint) -> list[Chunk]:
    """Start ``count`` sagas due days ahead, ``chunk`` at a time, each chunk waiting."""
    chunks: list[Chunk] = []
    footprint.database_before = bench.database_bytes()
    cpu_before = cpu_of(bench.pids)
    wish_date = datetime.now(UTC) + DAYS_AHEAD
    first = ""
    while (done := sum(c.sagas for c in chunks)) < count:
        size = min(chunk, count - done)
        subscriptions = subscription_ids(size)
        first = first or f"terminate-{subscriptions[0]}"
        began = time.monotonic()
        start = functools.partial(start_pending, bench, subscriptions, wish_date)
        seconds = await start_all(size, start)
        await wait_for_count(
            bench.client,
            WAITING,
            done + size,
            within=size + 600.0,
            what="pending sagas waiting",
            health=bench.check_alive,
        )
        settled = time.monotonic() - began
        chunks.append(
            Chunk(
                done + size,
                size,
                size / seconds,
                size / settled,
                worker_rss(bench),
                bench.database_bytes(),
            )
        )
        print(f"pending: {done + size:,} waiting, {size / settled:.1f} settled/s", flush=True)
        bench.reset_sandbox()  # the next chunk meets an empty sTN (the module docstring)
    footprint.cpu = cpu_used(cpu_before, cpu_of(bench.pids))
    footprint.background = count
    footprint.run = await size_of(bench, first)
    return chunks


async def when_all_pending(bench: Bench, total: int, footprint: Footprint) -> None:
    """Once ``total`` sagas wait at once: the footprint on disk and in the worker."""
    await wait_for_count(
        bench.client, WAITING, total, within=7200.0, what="all pending", health=bench.check_alive
    )
    footprint.pending = total
    footprint.database_pending = bench.database_bytes()
    footprint.worker_rss_pending = worker_rss(bench)


async def set_limits(bench: Bench, limits: dict[str, float] | None) -> None:
    """Every lane's limit as ``cancelctl lanes set`` does it (``None``: reset)."""
    for provider in Provider:
        limit = limits.get(provider) if limits is not None else None
        await set_lane_limit(bench.client, TASK_QUEUE, provider, limit, "bench.scale")


async def waves(
    bench: Bench, sagas: int, rate: float, limits: dict[str, float], footprint: Footprint
) -> list[WaveResult]:
    """The product's wave with the lanes' limits set (the footprint read while every
    saga waits), then bare Temporal's without; both beside the pending sagas."""
    await set_limits(bench, limits)
    window = observation_spread(limits.get(Provider.STN)).total_seconds()
    caps = ", ".join(f"{provider} {limit:g}/s" for provider, limit in limits.items())
    lanes = Variant(
        "lanes",
        f"product, lanes at {caps} (first polls spread over {window:.0f} s)",
        Kind.PRODUCT,
    )
    watch = asyncio.create_task(when_all_pending(bench, footprint.background + sagas, footprint))
    try:
        product = await one_wave(bench, lanes, sagas, rate, None)
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
    await set_limits(bench, None)
    bare = await one_wave(bench, VARIANTS["bare"], sagas, rate, None)
    return [bare, product]


def chunk_table(chunks: list[Chunk], before: int) -> str:
    rows = []
    previous = before
    for c in chunks:
        rows.append(
            [
                f"{c.pending:,}",
                f"{c.starts_per_second:.0f}",
                f"{c.settled_per_second:.1f}",
                f"{c.worker_rss:.0f}",
                f"{c.database_bytes / MIB:.0f}",
                f"{(c.database_bytes - previous) / c.sagas:,.0f}",
            ]
        )
        previous = c.database_bytes
    return report.markdown_table(
        [
            "sagas waiting",
            "starts/s",
            "settled/s (first start → last waiting)",
            "worker RSS MiB",
            "persistence on disk MiB",
            "bytes per saga of this chunk",
        ],
        rows,
    )


def footprint_table(footprint: Footprint) -> str:
    pending = footprint.database_pending
    rss = footprint.worker_rss_pending
    per_saga = (
        f"{(pending - footprint.database_before) / footprint.pending:,.0f}"
        if pending is not None and footprint.pending
        else "- (the wave fell due before all waited)"
    )
    return report.markdown_table(
        [
            "sagas waiting at once",
            "persistence on disk MiB before",
            "with all waiting MiB",
            "bytes per pending saga",
            "worker RSS MiB with all waiting",
        ],
        [
            [
                f"{footprint.pending:,}" if footprint.pending else "-",
                f"{footprint.database_before / MIB:.0f}",
                f"{pending / MIB:.0f}" if pending is not None else "-",
                per_saga,
                f"{rss:.0f}" if rss is not None else "-",
            ]
        ],
    )


def per_saga_table(footprint: Footprint, results: list[WaveResult], sizes: list[RunSize]) -> str:
    """Per pending saga (started, submitted, waiting), and per saga of each wave; the
    worker column is the worker that ran the saga (the product's, or the bare one)."""

    def row(
        label: str, cpu: dict[str, float], sagas: int, run: RunSize | None, worker: str
    ) -> list[str]:
        processes = [worker if process == "worker" else process for process in PROCESSES]
        return [
            label,
            f"{sagas:,}",
            *(report.cpu_ms_per_saga(cpu, process, sagas) for process in processes),
            str(run.state_transitions) if run else "-",
            str(run.events) if run else "-",
            f"{run.history_bytes:,}" if run else "-",
        ]

    rows = [
        row(
            "pending: start, submit, wait",
            footprint.cpu,
            footprint.background,
            footprint.run,
            "worker",
        )
    ]
    for result, size in zip(results, sizes, strict=True):
        phase = result.phase
        label = f"wave, whole life: {result.variant.label}"
        rows.append(row(label, phase.cpu, len(phase.runs), size, result.variant.process))
    return report.markdown_table(
        [
            "per saga",
            "sagas",
            *(f"{process} CPU ms" for process in PROCESSES),
            "state transitions",
            "history events",
            "history bytes",
        ],
        rows,
    )


async def main(args: argparse.Namespace) -> str:
    if not 0 < args.wave < args.pending:
        raise SystemExit("bench.scale: --wave must be above 0 and below --pending")
    limits: dict[str, float] = {**LIMITS, **by_provider(args.limits)}
    footprint = Footprint()
    async with running(args.target) as bench:
        chunks = await pend(bench, args.pending - args.wave, args.chunk, footprint)
        # The wave's submits go at the pace the chunks settled, at most sTN's limit.
        rate = SAFETY * min(chunks[-1].settled_per_second, limits[Provider.STN])
        results = await waves(bench, args.wave, rate, limits, footprint)
        sizes = [await size_of(bench, result.phase.runs[0].workflow_id) for result in results]
    body = "\n\n".join(
        [
            "Pending sagas, chunk by chunk:",
            chunk_table(chunks, footprint.database_before),
            "With every saga waiting at once:",
            footprint_table(footprint),
            "The waves, beside the pending sagas (columns as in section 2):",
            wave_table(results),
            "Per saga:",
            per_saga_table(footprint, results, sizes),
        ]
    )
    section = report.Section(
        "scale",
        f"7. Month-end at scale: {args.pending:,} sagas pending, a wave of {args.wave:,} of them",
        f"python -m bench.scale --pending {args.pending} --chunk {args.chunk} --wave {args.wave} "
        f"--limits {spec(limits)} (wish date set for {rate:.0f} submits/s)",
        __doc__ or "",
        body,
    )
    return report.publish(section, args.target)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = cli.parser("python -m bench.scale", __doc__)
    parser.add_argument(
        "--pending", type=int, default=100_000, help="sagas waiting at once, the wave's included"
    )
    parser.add_argument("--chunk", type=int, default=10_000, help="pending sagas started at once")
    parser.add_argument("--wave", type=int, default=10_000, help="of them, due together")
    parser.add_argument("--limits", default=spec(LIMITS), help="each lane's calls per second")
    return parser.parse_args(argv)


if __name__ == "__main__":
    cli.run(main(parse_args()))
