"""How fast sagas recover from a dead worker and from a flaky provider (issue #10, defect 4).

``python -m bench.recovery [--sagas 200] [--killed 20]`` starts a private stack
(``reliability.harness.Stack``: dev server, provider sandbox, one worker process),
then measures:

* **worker killed mid-call**: ``--killed`` immediate sTN terminations whose submit
  the sandbox holds for 20 s; once every submit is in flight the worker is SIGKILLed
  and restarted at once. Reported: seconds from the kill to each saga's completion.
  Without heartbeats a call in flight waits out its ``start_to_close`` timeout.
* **flaky provider**: ``--sagas`` immediate sTN terminations while 30 % of sTN
  requests answer 503 and 10 % 429 (retry-after 1 s). Reported: seconds from start
  to completion (p50/p90/p99/max), calls per saga, sagas slower than a minute.

Timings only: nothing here is a test (the invariants live in ``tests/`` and
``reliability/``). Run it on two checkouts to compare a change (``workflows/provider_calls.py``
quotes the figures that chose its timeouts and retry shape).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from config.settings import OrchestratorSettings
from domain.common import SagaKind
from domain.stn import TerminationRequest
from reliability.harness import TASK_QUEUE, Stack
from sandbox.testing import SandboxAdmin
from starter import sagas

HELD_SECONDS = 20.0
SAGA_DEADLINE = 900.0
# The worker's per-call httpx timeout: the production default (the harness's own 5 s
# suits its fault mix, not this measurement).
PROVIDER_TIMEOUT_SECONDS = 15.0


def summary(seconds: list[float]) -> str:
    ordered = sorted(seconds)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]

    return (
        f"p50 {statistics.median(ordered):6.1f} s  p90 {pct(0.9):6.1f} s  "
        f"p99 {pct(0.99):6.1f} s  max {ordered[-1]:6.1f} s"
    )


async def start_terminations(client: Client, count: int) -> list[WorkflowHandle[Any, Any]]:
    settings = OrchestratorSettings(task_queue=TASK_QUEUE)
    handles = []
    for _ in range(count):
        request = TerminationRequest(subscription_id=f"SUB-BENCH-{uuid.uuid4().hex[:12]}")
        started = await sagas.start(client, SagaKind.LINE_TERMINATION, request, settings)
        handles.append(client.get_workflow_handle(started.workflow_id))
    return handles


async def finished_at(handle: WorkflowHandle[Any, Any]) -> float:
    await handle.result()
    return time.monotonic()


async def submits_in_flight(handles: list[WorkflowHandle[Any, Any]]) -> int:
    count = 0
    for handle in handles:
        try:
            description = await handle.describe()
        except RPCError:
            continue
        count += sum(
            1
            for pending in description.raw_description.pending_activities
            if pending.activity_type.name.endswith("submit_termination") and pending.state == 2
        )
    return count


async def worker_killed_mid_call(client: Client, running: Stack, count: int) -> list[float]:
    with SandboxAdmin(running.sandbox_url) as admin:
        admin.add_fault(
            provider="stn",
            method="POST",
            path="/api/TerminateSubscription",
            mode="latency",
            latency_seconds=HELD_SECONDS,
            count=count,
        )
    handles = await start_terminations(client, count)
    deadline = time.monotonic() + 60
    while await submits_in_flight(handles) < count:
        if time.monotonic() > deadline:
            raise RuntimeError("the submits never were all in flight")
        await asyncio.sleep(0.2)
    killed = time.monotonic()
    await running.crash_worker(down_seconds=0)
    done = await asyncio.wait_for(asyncio.gather(*(finished_at(h) for h in handles)), SAGA_DEADLINE)
    return [at - killed for at in done]


async def flaky_provider(client: Client, running: Stack, count: int) -> tuple[list[float], float]:
    with SandboxAdmin(running.sandbox_url) as admin:
        admin.clear_faults()
        admin.add_fault(provider="stn", mode="error", status=503, rate=0.3)
        admin.add_fault(provider="stn", mode="rate_limit", rate=0.1, retry_after_seconds=1)
        before = len(admin.calls())
    started = time.monotonic()
    handles = await start_terminations(client, count)
    done = await asyncio.wait_for(asyncio.gather(*(finished_at(h) for h in handles)), SAGA_DEADLINE)
    with SandboxAdmin(running.sandbox_url) as admin:
        calls = len(admin.calls()) - before
        admin.clear_faults()
    return [at - started for at in done], calls / count


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-recovery-") as workdir:
        running = Stack(Path(workdir), provider_timeout_seconds=PROVIDER_TIMEOUT_SECONDS)
        try:
            await running.start(api=False)
            await measure(running, args)
        finally:
            running.stop()


async def measure(running: Stack, args: argparse.Namespace) -> None:
    client = await running.client()
    with SandboxAdmin(running.sandbox_url) as admin:
        admin.configure(stn_processing_delay_seconds=1.0)
    killed = await worker_killed_mid_call(client, running, args.killed)
    print(f"worker killed mid-call  {len(killed):4d} sagas  kill → done  {summary(killed)}")
    flaky, calls = await flaky_provider(client, running, args.sagas)
    slow = sum(1 for s in flaky if s > 60)
    print(
        f"30% 503 + 10% 429       {len(flaky):4d} sagas  start → done {summary(flaky)}"
        f"  {calls:.1f} sTN calls/saga, {slow} over 60 s"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.recovery", description=__doc__)
    parser.add_argument("--sagas", type=int, default=200, help="sagas under provider faults")
    parser.add_argument("--killed", type=int, default=20, help="sagas in flight at the kill")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
