"""Benchmark 6: outcome events, their cost to saga throughput and their latency.

``python -m bench.outcomes [--sagas 500] [--blocks 4] [--rate 10]``, immediate sTN
terminations (each emits one event, ``saga.completed``), on one stack:

* **throughput, events off / on**: rounds of ``--sagas`` terminations started with 32
  in flight; sagas per second from the first start until the last one completed
  (visibility). One subscription to every type, filtered to a customer: a round is
  *on* when its sagas are that customer's (each event POSTed to the sandbox's
  subscriber, which checks the signature and answers 204: inline by the publish, or
  through the subscription's outbox), *off* when they are another's (every saga still
  records its publish marker; the local activity finds nothing to deliver). So the
  rounds run back to back, with nothing to change or wait for between them, in
  ``--blocks`` blocks of four: off, on, on, off, then on, off, off, on. The stack slows
  as its histories grow and its speed drifts from round to round on a small machine;
  this order cancels a steady drift and the many rounds shrink the rest. Each way's
  rate is its rounds together (each shown), on the same server and worker. The ratio
  on / off is the price.
* **latency at a steady load**: terminations started at ``--rate`` per second for
  another subscription; for each event, from the state change (the event's ``time``:
  the workflow task that completed the saga) to the first delivery attempt reaching the
  subscriber (its arrival time, same machine): p50, p99, max.

CPU ms per saga: each process's CPU time over the batch, divided by its sagas. The
sandbox is the providers' double and, with events on, the subscriber too (it checks
every signature and keeps every attempt): on the same 2 cores, its CPU is taken from
the product's, a cost a real subscriber elsewhere would not charge.
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
OFF = "events off (no subscription matches)"
ON = "events on (one subscription, every type)"


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


#: The customers of the sagas whose events a subscription takes (on), and of those it
#: leaves out (off); the latency's own.
CUSTOMER_ON = "BENCH-ON"
CUSTOMER_OFF = "BENCH-OFF"
CUSTOMER_LATENCY = "BENCH-LATENCY"


async def subscribe(bench: Bench, endpoint: str, customer: str) -> None:
    """A subscription to every type of ``customer``'s sagas, once the worker sees it."""
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    admin = bench.admin()
    admin.configure_subscriber(endpoint, secrets=[secret])
    request = SubscriptionRequest(
        url=admin.subscriber_url(endpoint),
        secret=secret,
        types=list(OutcomeEventType),
        customers=[customer],
    )
    await outcomes.add_subscription(bench.client, TASK_QUEUE, request, Environment.DEVELOPMENT)
    # The worker reads the store at most this often (README "Outcome events").
    await asyncio.sleep(WebhookSettings().subscription_cache_seconds + 1)


def requests(tag: str, count: int, customer: str) -> list[TerminationRequest]:
    return [
        TerminationRequest(subscription_id=f"SUB-O{tag}-{i:05d}", customer_id=customer)
        for i in range(count)
    ]


async def completed(bench: Bench, tag: str, count: int, what: str) -> None:
    query = f"WorkflowId STARTS_WITH 'terminate-SUB-O{tag}-' AND ExecutionStatus = 'Completed'"
    await wait_for_count(
        bench.client, query, count, within=600, what=what, health=bench.check_alive
    )


async def throughput(bench: Bench, way: str, count: int) -> Throughput:
    bench.reset_sandbox()
    tag = uuid.uuid4().hex[:8].upper()
    batch = requests(tag, count, CUSTOMER_ON if way == ON else CUSTOMER_OFF)
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
    batch = requests(tag, count, CUSTOMER_LATENCY)
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


def order(blocks: int) -> list[str]:
    """The ways' rounds: ``blocks`` blocks of four, off-on-on-off then on-off-off-on and so
    on. One block cancels a stack that slows steadily; two cancel one whose slowing
    itself speeds up or slows down; more shrink the noise of any one round."""
    first, second = [OFF, ON, ON, OFF], [ON, OFF, OFF, ON]
    return [way for block in range(blocks) for way in (first if block % 2 == 0 else second)]


async def measure(
    bench: Bench, count: int, rate: float, blocks: int
) -> tuple[list[Throughput], Latency]:
    """The throughput rounds in :func:`order`, one right after the other (a round is on
    or off by its sagas' customer: nothing to change and wait for between rounds), then
    the latency."""
    await subscribe(bench, f"bench-{uuid.uuid4().hex[:8]}", CUSTOMER_ON)
    latency_endpoint = f"bench-{uuid.uuid4().hex[:8]}"
    await subscribe(bench, latency_endpoint, CUSTOMER_LATENCY)
    await throughput(bench, "warm-up", WARM_UP)
    rounds = [await throughput(bench, way, count) for way in order(blocks)]
    steady = await latency(bench, latency_endpoint, count, rate)
    return rounds, steady


def combined(rounds: list[Throughput], way: str) -> tuple[Throughput, list[float]]:
    """A way's rounds as one batch, and each round's rate."""
    mine = [r for r in rounds if r.way == way]
    cpu: dict[str, float] = {}
    for r in mine:
        for name, seconds in r.cpu.items():
            cpu[name] = cpu.get(name, 0.0) + seconds
    total = Throughput(way, sum(r.sagas for r in mine), sum(r.seconds for r in mine), cpu)
    return total, [r.rate for r in mine]


def tables(rounds: list[Throughput], steady: Latency) -> str:
    ways = [combined(rounds, way) for way in (OFF, ON)]
    off = ways[0][0].rate
    rows = [
        [
            r.way,
            str(r.sagas),
            " / ".join(f"{rate:.1f}" for rate in each),
            f"{r.rate:.1f}",
            f"{r.rate / off:.2f}x",
            report.cpu_ms_per_saga(r.cpu, "worker", r.sagas),
            report.cpu_ms_per_saga(r.cpu, "server", r.sagas),
            report.cpu_ms_per_saga(r.cpu, "sandbox", r.sagas),
        ]
        for r, each in ways
    ]
    first = report.markdown_table(
        [
            "way",
            "sagas",
            "rounds, sagas/s",
            "completed sagas/s",
            "vs off",
            "worker CPU ms/saga",
            "server CPU ms/saga",
            "sandbox CPU ms/saga",
        ],
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
        rounds, steady = await measure(bench, args.sagas, args.rate, args.blocks)
    section = report.Section(
        "outcomes",
        "8. Outcome events: throughput with events on and off, state change to first delivery",
        f"python -m bench.outcomes --sagas {args.sagas} --blocks {args.blocks}"
        f" --rate {args.rate:g}",
        __doc__ or "",
        tables(rounds, steady),
    )
    return report.publish(section, args.target)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = cli.parser("python -m bench.outcomes", __doc__)
    parser.add_argument("--sagas", type=int, default=500, help="sagas per round")
    parser.add_argument(
        "--blocks", type=int, default=4, help="blocks of four throughput rounds (see order)"
    )
    parser.add_argument("--rate", type=float, default=10.0, help="starts per second (latency)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    cli.run(main(parse_args()))
