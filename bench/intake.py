"""Benchmark 4: event intake, requests per second that become started sagas.

``python -m bench.intake [--sagas 300]``: sTN terminations due tomorrow (each saga
submits, then waits: the worker's share stays what a real intake costs) started
with 32 requests in flight, one way after another on the same stack:

* **bare client start**: ``Client.start_workflow`` of the LineTermination alone, the
  floor: no look-up of the business key's latest run first;
* **direct client starts**: ``starter.sagas.start`` of a LineTermination in the bench
  process (what ``cancelctl`` and the API both call: describe the latest run, then
  start);
* **API, POST /v1/line-terminations** with an ``Idempotency-Key`` per request (as a
  CRM that retries would send), through ``reliability.entrypoints.Api``;
* **API, POST /v1/events**: the same request as a CloudEvent.

Both API ways look their delivery (the key, the event id) up in visibility first
(the ``IdempotencyKey`` search attribute). Temporal Server rate-limits visibility
calls per frontend and namespace (``frontend.namespaceRPS.visibility``: 10/s unless
deploy/temporal/dynamicconfig.yaml raises it); the dev server does not hold them back.

A request counts once it was answered 2xx and its run exists (counted in visibility
before the rate is taken). Rate: sagas over the seconds from the first request to
the last answer. Ratio: each rate over the direct starts' rate. The API's CPU ms per
saga is its process's CPU time over the batch; the server's and the database's
likewise (on the cluster: the four Temporal services summed, and PostgreSQL's
postmaster with its backends; the dev server keeps SQLite in its own process, so its
database column is ``-``).
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bench import cli, report
from bench.measure import cpu_of, cpu_used, start_all, wait_for_count
from bench.target import Bench, running
from config.settings import OrchestratorSettings
from domain.common import SagaKind
from domain.stn import TerminationRequest
from reliability.entrypoints import Api, api_body
from reliability.harness import TASK_QUEUE
from starter import sagas
from starter.kinds import KINDS

SETTINGS = OrchestratorSettings(task_queue=TASK_QUEUE)


@dataclass(frozen=True)
class Intake:
    way: str
    sagas: int
    seconds: float
    cpu: dict[str, float]

    @property
    def rate(self) -> float:
        return self.sagas / self.seconds

    def cpu_ms(self, process: str) -> str:
        return report.cpu_ms_per_saga(self.cpu, process, self.sagas)


Send = Callable[[TerminationRequest], Awaitable[None]]


async def batch(bench: Bench, way: str, count: int, send: Send) -> Intake:
    bench.reset_sandbox()
    tag = uuid.uuid4().hex[:8].upper()
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    requests = [
        TerminationRequest(subscription_id=f"SUB-I{tag}-{i:05d}", wish_date=tomorrow)
        for i in range(count)
    ]
    pids = bench.pids
    before = cpu_of(pids)
    began = time.monotonic()

    async def one(index: int) -> None:
        await send(requests[index])

    await start_all(count, one, concurrency=32)
    seconds = time.monotonic() - began
    cpu = cpu_used(before, cpu_of(pids))
    query = f"WorkflowId STARTS_WITH 'terminate-SUB-I{tag}-'"
    await wait_for_count(bench.client, query, count, within=120, what=way, health=bench.check_alive)
    return Intake(way, count, seconds, cpu)


async def measure(bench: Bench, count: int) -> list[Intake]:
    api = Api(bench)
    termination = KINDS[SagaKind.LINE_TERMINATION]

    async def bare(request: TerminationRequest) -> None:
        await bench.client.start_workflow(
            termination.run,
            request,
            id=termination.workflow_id(request, SETTINGS),
            task_queue=TASK_QUEUE,
        )

    async def direct(request: TerminationRequest) -> None:
        await sagas.start(bench.client, SagaKind.LINE_TERMINATION, request, SETTINGS)

    async def post(request: TerminationRequest) -> None:
        answer = await api.start(
            SagaKind.LINE_TERMINATION, api_body(request), idempotency_key=uuid.uuid4().hex
        )
        if not answer.ok:
            raise RuntimeError(f"the API answered {answer.code}: {answer.text[:300]}")

    async def event(request: TerminationRequest) -> None:
        answer = await api.event(
            SagaKind.LINE_TERMINATION, "bench/intake", uuid.uuid4().hex, api_body(request)
        )
        if not answer.ok:
            raise RuntimeError(f"the API answered {answer.code}: {answer.text[:300]}")

    try:
        # A short warm-up each, so no way pays for first imports and connections.
        for send in (bare, direct, post, event):
            await batch(bench, "warm-up", 10, send)
        return [
            await batch(bench, "bare client start (Client.start_workflow)", count, bare),
            await batch(bench, "direct client starts", count, direct),
            await batch(bench, "API POST /v1/line-terminations", count, post),
            await batch(bench, "API POST /v1/events (CloudEvent)", count, event),
        ]
    finally:
        await api.close()


def table(results: list[Intake]) -> str:
    direct = next(r.rate for r in results if r.way == "direct client starts")
    rows = [
        [
            r.way,
            str(r.sagas),
            f"{r.rate:.1f}",
            f"{r.rate / direct:.2f}x",
            r.cpu_ms("api"),
            r.cpu_ms("server"),
            r.cpu_ms("database"),
            r.cpu_ms("worker"),
        ]
        for r in results
    ]
    return report.markdown_table(
        [
            "way in",
            "sagas",
            "started sagas/s",
            "vs direct",
            "API CPU ms/saga",
            "server CPU ms/saga",
            "database CPU ms/saga",
            "worker CPU ms/saga",
        ],
        rows,
    )


async def main(args: argparse.Namespace) -> str:
    async with running(args.target, api=True) as bench:
        results = await measure(bench, args.sagas)
    body = table(results)
    section = report.Section(
        "intake",
        "4. Event intake: API requests that become started sagas",
        f"python -m bench.intake --sagas {args.sagas}",
        __doc__ or "",
        body,
    )
    return report.publish(section, args.target)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = cli.parser("python -m bench.intake", __doc__)
    parser.add_argument("--sagas", type=int, default=300, help="sagas per way in")
    return parser.parse_args(argv)


if __name__ == "__main__":
    cli.run(main(parse_args()))
