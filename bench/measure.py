"""What every benchmark measures the same way: percentiles, process samples, runs.

* :func:`pct` and :class:`Spread`: percentiles by nearest rank, one rule everywhere.
* :class:`Processes`: what one figure ("server", "database", "worker") sums: one
  process on the dev server, the four Temporal services on the cluster, PostgreSQL's
  postmaster with its per-connection backends. The one home of ``/proc`` reading.
* :class:`ProcessSampler`: resident memory (``VmRSS``) read from ``/proc`` every half
  second, and :func:`cpu_of`: CPU seconds (``utime + stime``). CPU seconds per saga
  are the figure the shared 2-core machine disturbs least: another engineer's load
  stretches wall-clock time, not the work each process does.
* :func:`start_all`: starts at a bounded concurrency, as a busy caller would.
* :func:`closed_runs`: the runs of a phase, with the server's start and close times,
  once every one has closed (polled with a deadline, never slept on).
* :func:`busiest_window`: the most provider calls in any window of some seconds (a
  lane's rate at the provider, from the sandbox's call log: :func:`call_times`).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from temporalio.client import Client

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def pct(values: Sequence[float], p: float) -> float:
    """The ``p`` quantile (0..1) by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p * (len(ordered) - 1))))]


@dataclass(frozen=True)
class Spread:
    p50: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            return cls(0.0, 0.0, 0.0, 0.0)
        return cls(pct(values, 0.5), pct(values, 0.99), max(values), statistics.fmean(values))


def rss_mib(pid: int) -> float | None:
    """Resident memory of ``pid`` in MiB (``VmRSS``); None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def _stat(pid: int) -> list[str] | None:
    """``/proc/PID/stat``'s fields after the command name (which may hold spaces):
    index 1 is the parent's pid, 11/12 ``utime``/``stime``, 13/14 ``cutime``/``cstime``."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def cpu_seconds(pid: int, *, reaped_children: bool = False) -> float | None:
    """User + system CPU seconds ``pid`` has used so far (with ``reaped_children``, also
    what its children used that it has waited for); None once it is gone."""
    fields = _stat(pid)
    if fields is None:
        return None
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def children_of(parents: Collection[int]) -> list[int]:
    """Live processes whose parent is one of ``parents`` (a scan of ``/proc``)."""
    found = []
    for entry in os.listdir("/proc"):
        fields = _stat(int(entry)) if entry.isdigit() else None
        if fields is not None and int(fields[1]) in parents:
            found.append(int(entry))
    return found


@dataclass(frozen=True)
class Processes:
    """The processes one figure sums (CPU seconds, resident memory).

    ``with_children``: also every live child of ``pids`` and, for CPU, what the reaped
    ones used (the parent's ``cutime + cstime``): PostgreSQL's postmaster forks a
    backend per connection, and Temporal's pools open and close them. Summed memory
    counts shared pages once per process (PostgreSQL's shared buffers): a ceiling.
    """

    pids: tuple[int, ...]
    with_children: bool = False

    @classmethod
    def of(cls, *pids: int, with_children: bool = False) -> Processes:
        return cls(tuple(pids), with_children)

    @property
    def main(self) -> int:
        """The first (the one to profile): a Python process is one pid anyway."""
        return self.pids[0]

    def members(self) -> list[int]:
        return [*self.pids, *(children_of(self.pids) if self.with_children else [])]

    def cpu_seconds(self) -> float:
        """CPU seconds used so far (a process gone since counts 0; a child reaped
        between the parent's read and the scan is missed once: a few ms of noise
        against seconds per phase)."""
        own = sum(cpu_seconds(pid, reaped_children=self.with_children) or 0.0 for pid in self.pids)
        children = children_of(self.pids) if self.with_children else []
        return own + sum(cpu_seconds(pid) or 0.0 for pid in children)

    def rss_mib(self) -> float | None:
        """Summed resident memory in MiB; None once every process is gone."""
        values = [rss for pid in self.members() if (rss := rss_mib(pid)) is not None]
        return sum(values) if values else None


#: What a benchmark samples: each figure's name ("worker", "server", ...) and processes.
Pids = dict[str, Processes]


@dataclass
class ProcessSampler:
    """Samples ``VmRSS`` of some processes in the background (``async with``), each
    sample at its wall-clock time (``time.time()``: comparable with the sandbox's log)."""

    pids: Pids
    interval: float = 0.5
    samples: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ProcessSampler:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            now = time.time()
            for name, processes in self.pids.items():
                rss = processes.rss_mib()
                if rss is not None:
                    self.samples.setdefault(name, []).append((now, rss))
            await asyncio.sleep(self.interval)

    def peak(self, name: str, since: float = 0.0, until: float = float("inf")) -> float:
        values = [rss for at, rss in self.samples.get(name, []) if since <= at <= until]
        return max(values, default=0.0)


def cpu_of(pids: Pids) -> dict[str, float]:
    return {name: processes.cpu_seconds() for name, processes in pids.items()}


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before.get(name, 0.0) for name in after}


async def start_all(
    count: int, start_one: Callable[[int], Awaitable[None]], concurrency: int = 32
) -> float:
    """Call ``start_one(0..count-1)``, at most ``concurrency`` at once; the seconds taken."""
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with gate:
            await start_one(index)

    began = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(count)))
    return time.monotonic() - began


@dataclass(frozen=True)
class Run:
    workflow_id: str
    started: datetime
    closed: datetime
    status: str


async def count(client: Client, query: str) -> int:
    return (await client.count_workflows(query)).count


Health = Callable[[], None]


def healthy() -> None:
    """A health check that finds nothing wrong."""


async def wait_for_count(
    client: Client,
    query: str,
    expected: int,
    *,
    within: float,
    what: str,
    health: Health = healthy,
) -> None:
    """Poll until ``query`` counts ``expected`` runs, or fail at the deadline (or as
    soon as ``health`` raises: a dead worker never finishes anything)."""
    deadline = time.monotonic() + within
    while (seen := await count(client, query)) < expected:
        health()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: {seen} of {expected} after {within:.0f} s")
        await asyncio.sleep(0.5)


async def closed_runs(
    client: Client, query: str, ids: set[str], *, within: float, health: Health = healthy
) -> list[Run]:
    """The runs of ``ids`` (which ``query`` matches, among others perhaps), once all closed."""
    closed = f"({query}) AND ExecutionStatus != 'Running'"
    deadline = time.monotonic() + within
    while True:
        remaining = max(1.0, deadline - time.monotonic())
        await wait_for_count(client, closed, len(ids), within=remaining, what=query, health=health)
        runs = []
        async for execution in client.list_workflows(closed):
            if execution.id not in ids or execution.close_time is None:
                continue
            status = execution.status.name if execution.status else "?"
            runs.append(Run(execution.id, execution.start_time, execution.close_time, status))
        if len(runs) >= len(ids):
            return runs
        if time.monotonic() > deadline:
            raise TimeoutError(f"{query}: {len(runs)} of {len(ids)} closed after {within:.0f} s")
        await asyncio.sleep(0.5)


def throughput(runs: Sequence[Run], share: float = 0.99) -> float:
    """Runs per second from the first start until ``share`` of them had closed (server
    clock). 99 %: one straggler (a task retried after a timeout) says nothing of the
    rate, and is visible in the tail columns instead."""
    if not runs:
        return 0.0
    closes = sorted(run.closed for run in runs)
    done = max(1, round(share * len(closes)))
    span = (closes[done - 1] - min(run.started for run in runs)).total_seconds()
    return done / span if span > 0 else float("inf")


def call_times(calls: Iterable[Mapping[str, object]]) -> list[float]:
    """When each call of the sandbox's log reached it (epoch seconds), in order."""
    return sorted(datetime.fromisoformat(str(call["at"])).timestamp() for call in calls)


def busiest_window(times: Sequence[float], seconds: float = 10.0) -> int:
    """The most of ``times`` (seconds) inside any window ``seconds`` long."""
    ordered = sorted(times)
    most = end = 0
    for start, first in enumerate(ordered):
        while end < len(ordered) and ordered[end] - first < seconds:
            end += 1
        most = max(most, end - start)
    return most
