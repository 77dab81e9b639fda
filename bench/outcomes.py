"""Benchmark 6: outcome events, their cost to saga throughput and their latency.

``python -m bench.outcomes [--sagas 300] [--rate 10]``, immediate sTN terminations (each
emits one event, ``saga.completed``), on one stack, one way after another:

* **throughput, events off / on**: ``--sagas`` terminations started with 32 in flight;
  sagas per second from the first start until the last one completed (visibility).
  *Off*: no subscription (every saga still records its publish marker; the local
  activity finds nothing to deliver). *On*: one subscription to every type, its
  endpoint the sandbox's subscriber (checks the signature, answers 204): each saga
  also signals the event to the subscription's outbox (``SubscriberOutbox``), which
  POSTs the events that came meanwhile as one batch (a local activity), on the same
  server and worker. The ratio on / off is the price.
* **latency at a steady load**: terminations started at ``--rate`` per second, the
  subscription on; for each event, from the state change (the event's ``time``: the
  workflow task that completed the saga) to the first delivery attempt reaching the
  subscriber (its arrival time, same machine): p50, p99, max.

CPU ms per saga: each process's CPU time over the batch, divided by its sagas.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import math
import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from bench import cli, report
from bench.measure import cpu_of, cpu_used, start_all, wait_for_count
from bench.target import Bench, running
from config.settings import Environment, OrchestratorSettings, WebhookSettings
from domain.common import SagaKind
from domain.outcomes import OutcomeEventType, SubscriptionRequest
from domain.stn import TerminationRequest
from reliability.harness import TASK_QUEUE
from starter import outcomes, sagas

SETTINGS = OrchestratorSettings(task_queue=TASK_QUEUE)
WARM_UP = 10


@dataclass(frozen=True)
class Throughput:
    way: str
    sagas: int
    seconds: float
    cpu: dict[str, float]

    @property
    def rate(self) -> float:
        return self.sagas / self.seconds


@dataclass(frozen=True)
class Latency:
    sagas: int
    rate: float
    delivered: int
    milliseconds: list[float]

    def percentile(self, share: float) -> float:
        ordered = sorted(self.milliseconds)
        return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


async def subscribe(bench: Bench, endpoint: str) -> None:
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    admin = bench.admin()
    admin.configure_subscriber(endpoint, secrets=[secret])
    request = SubscriptionRequest(
        url=admin.subscriber_url(endpoint), secret=secret, types=list(OutcomeEventType)
    )
    await outcomes.add_subscription(bench.client, TASK_QUEUE, request, Environment.DEVELOPMENT)


def requests(tag: str, count: int) -> list[TerminationRequest]:
    return [TerminationRequest(subscription_id=f"SUB-O{tag}-{i:05d}") for i in range(count)]


async def completed(bench: Bench, tag: str, count: int, what: str) -> None:
    query = f"WorkflowId STARTS_WITH 'terminate-SUB-O{tag}-' AND ExecutionStatus = 'Completed'"
    await wait_for_count(
        bench.client, query, count, within=600, what=what, health=bench.check_alive
    )


async def throughput(bench: Bench, way: str, count: int) -> Throughput:
    bench.reset_sandbox()
    tag = uuid.uuid4().hex[:8].upper()
    batch = requests(tag, count)
    before = cpu_of(bench.pids)
    began = time.monotonic()

    async def one(index: int) -> None:
        await sagas.start(bench.client, SagaKind.LINE_TERMINATION, batch[index], SETTINGS)

    await start_all(count, one, concurrency=32)
    await completed(bench, tag, count, way)
    seconds = time.monotonic() - began
    return Throughput(way, count, seconds, cpu_used(before, cpu_of(bench.pids)))


async def latency(bench: Bench, endpoint: str, count: int, rate: float) -> Latency:
    """Every event's first attempt; a batch whose events never arrive is an error."""
    tag = uuid.uuid4().hex[:8].upper()
    batch = requests(tag, count)
    began = time.monotonic()
    for index, request in enumerate(batch):
        # A steady load: the next start at its place in the schedule, not in a burst.
        await asyncio.sleep(max(0.0, began + index / rate - time.monotonic()))
        await sagas.start(bench.client, SagaKind.LINE_TERMINATION, request, SETTINGS)
    await completed(bench, tag, count, "latency")
    admin = bench.admin()
    subjects = {f"terminate-SUB-O{tag}-{i:05d}" for i in range(count)}
    deadline = time.monotonic() + 120
    while True:
        attempts = admin.subscriber_received(endpoint)["attempts"]
        first: dict[str, float] = {}
        for attempt in attempts:
            body = attempt.get("body") or {}
            if body.get("subject") in subjects and attempt["webhookId"] not in first:
                emitted = datetime.fromisoformat(body["time"]).timestamp()
                first[attempt["webhookId"]] = (attempt["receivedAtEpoch"] - emitted) * 1000
        if len(first) >= count:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(first)} of {count} events reached the subscriber")
        await asyncio.sleep(1.0)
    return Latency(count, rate, len(first), list(first.values()))


async def measure(bench: Bench, count: int, rate: float) -> tuple[list[Throughput], Latency]:
    await throughput(bench, "warm-up", WARM_UP)
    off = await throughput(bench, "events off (no subscription)", count)
    endpoint = f"bench-{uuid.uuid4().hex[:8]}"
    await subscribe(bench, endpoint)
    # The worker read the store (empty) during the batch before: a new subscription is
    # seen once that read is older than the cache's life (README "Outcome events").
    await asyncio.sleep(WebhookSettings().subscription_cache_seconds + 1)
    await throughput(bench, "warm-up", WARM_UP)
    on = await throughput(bench, "events on (one subscription, every type)", count)
    steady = await latency(bench, endpoint, count, rate)
    return [off, on], steady


def tables(results: list[Throughput], steady: Latency) -> str:
    off = results[0].rate
    rows = [
        [
            r.way,
            str(r.sagas),
            f"{r.rate:.1f}",
            f"{r.rate / off:.2f}x",
            report.cpu_ms_per_saga(r.cpu, "worker", r.sagas),
            report.cpu_ms_per_saga(r.cpu, "server", r.sagas),
        ]
        for r in results
    ]
    first = report.markdown_table(
        ["way", "sagas", "completed sagas/s", "vs off", "worker CPU ms/saga", "server CPU ms/saga"],
        rows,
    )
    second = report.markdown_table(
        ["sagas", "started per s", "events delivered", "p50 ms", "p99 ms", "max ms"],
        [
            [
                str(steady.sagas),
                f"{steady.rate:g}",
                str(steady.delivered),
                f"{steady.percentile(0.50):.0f}",
                f"{steady.percentile(0.99):.0f}",
                f"{max(steady.milliseconds):.0f}",
            ]
        ],
    )
    return f"{first}\n\nState change → first delivery attempt, at a steady load:\n\n{second}"


async def main(args: argparse.Namespace) -> str:
    async with running(args.target) as bench:
        results, steady = await measure(bench, args.sagas, args.rate)
    section = report.Section(
        "outcomes",
        "8. Outcome events: throughput with events on and off, state change to first delivery",
        f"python -m bench.outcomes --sagas {args.sagas} --rate {args.rate:g}",
        __doc__ or "",
        tables(results, steady),
    )
    return report.publish(section, args.target)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = cli.parser("python -m bench.outcomes", __doc__)
    parser.add_argument("--sagas", type=int, default=300, help="sagas per batch")
    parser.add_argument("--rate", type=float, default=10.0, help="starts per second (latency)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    cli.run(main(parse_args()))
