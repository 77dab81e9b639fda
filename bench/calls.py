"""Benchmark 3: provider efficiency, HTTP calls per saga against a naive client.

``python -m bench.calls [--sagas 20]``: each workload runs on a freshly reset sandbox
and counts the requests its call log recorded, by provider and route:

* **sTN termination, BUSY 10 s**: immediate terminations that sTN executes 10 s
  after accepting them (``stn_processing_delay_seconds=10``): submit + polls.
* **sTN revoke (compensation)**: terminations scheduled for tomorrow, revoked by
  an operator once waiting: CancelTerminateSubscription, its polls, the check that
  the termination did not execute.
* **Rebilly cancellation**: order cancellations with ``churnTimePolicy=now``.
* **Airalo, 25 future orders in one saga**: listing and cancelling, with the
  partner token (POST /v2/token) cached by the worker.

The naive client does the same work with one request per id and a poll every
second (the first at once) until the provider's answer is final: for sTN a submit
and ``ceil(seconds BUSY) + 1`` polls per termination; for Airalo a token, a look-up
and a cancel per order. The ratio is naive requests over ours (above 1: we send
fewer).
"""

from __future__ import annotations

import argparse
import math
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from activities.provider_http import route_template
from bench import cli, report
from bench.measure import closed_runs, wait_for_count
from bench.target import Bench, running
from config.settings import OrchestratorSettings
from domain.airalo import FutureOrderCancellationRequest
from domain.common import SagaKind
from domain.rebilly import OrderCancellationRequest
from domain.stn import TerminationRequest
from reliability.harness import TASK_QUEUE
from starter import sagas
from starter.kinds import KINDS

SETTINGS = OrchestratorSettings(task_queue=TASK_QUEUE)
STN_BUSY_SECONDS = 10.0
AIRALO_ORDERS = 25


@dataclass(frozen=True)
class Workload:
    name: str
    sagas: int
    routes: Counter[str]
    naive: float

    @property
    def ours(self) -> float:
        return sum(self.routes.values()) / self.sagas


def route_counts(bench: Bench) -> Counter[str]:
    with bench.admin() as admin:
        calls = admin.calls()
    return Counter(f"{call['provider']} {call['method']} {call['path']}" for call in calls)


def summarise(routes: Counter[str], sagas: int) -> str:
    """``provider METHOD /route``: requests per saga, ids in paths as ``{id}``."""
    merged: Counter[str] = Counter()
    for route, number in routes.items():
        provider, method, path = route.split(" ", 2)
        merged[f"{provider} {route_template(method, path)}"] += number
    return "<br>".join(f"{name}: {number / sagas:.2f}" for name, number in sorted(merged.items()))


def naive_polls(busy_seconds: float) -> int:
    """Polls of a client that asks at once and then every second until the answer is
    final (``busy_seconds`` after it was accepted): at 0, 1, ... ceil(busy) s."""
    return math.ceil(busy_seconds) + 1


async def started(bench: Bench, kind: SagaKind, request: BaseModel) -> str:
    """Start a saga as cancelctl and the API do; its workflow id."""
    return (await sagas.start(bench.client, kind, request, SETTINGS)).workflow_id


async def wait_closed(bench: Bench, workflow_ids: set[str], kind: SagaKind) -> None:
    query = f"WorkflowType = '{KINDS[kind].workflow_type}'"
    await closed_runs(bench.client, query, workflow_ids, within=600, health=bench.check_alive)


async def stn_busy(bench: Bench, count: int) -> Workload:
    bench.reset_sandbox()
    with bench.admin() as admin:
        admin.configure(stn_processing_delay_seconds=STN_BUSY_SECONDS)
    ids = set()
    try:
        for _ in range(count):
            request = TerminationRequest(subscription_id=f"SUB-C{uuid.uuid4().hex[:12]}")
            ids.add(await started(bench, SagaKind.LINE_TERMINATION, request))
        await wait_closed(bench, ids, SagaKind.LINE_TERMINATION)
    finally:
        with bench.admin() as admin:
            admin.configure(stn_processing_delay_seconds=0.0)
    naive = 1 + naive_polls(STN_BUSY_SECONDS)
    return Workload(
        f"sTN termination, BUSY {STN_BUSY_SECONDS:.0f} s", count, route_counts(bench), naive
    )


async def stn_revoke(bench: Bench, count: int) -> Workload:
    bench.reset_sandbox()
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    ids = []
    for _ in range(count):
        request = TerminationRequest(
            subscription_id=f"SUB-R{uuid.uuid4().hex[:12]}", wish_date=tomorrow
        )
        ids.append(await started(bench, SagaKind.LINE_TERMINATION, request))
    waiting = (
        f"WorkflowType = '{KINDS[SagaKind.LINE_TERMINATION].workflow_type}' "
        "AND CancellationStatus = 'WAITING'"
    )
    await wait_for_count(
        bench.client, waiting, count, within=300, what="waiting", health=bench.check_alive
    )
    submitted = route_counts(bench)
    for workflow_id in ids:
        await sagas.revoke(bench.client, workflow_id, "bench: revoke")
    await wait_closed(bench, set(ids), SagaKind.LINE_TERMINATION)
    routes = route_counts(bench) - submitted
    with bench.admin() as admin:
        delay = float(admin.configure()["stnCancellationDelaySeconds"])
    # Naive: cancel, a poll every second until the cancellation is DONE, one check.
    naive = 1 + naive_polls(delay) + 1
    return Workload("sTN revoke (compensation), after the submit", count, routes, naive)


async def rebilly_now(bench: Bench, count: int) -> Workload:
    bench.reset_sandbox()
    ids = set()
    for _ in range(count):
        request = OrderCancellationRequest.model_validate(
            {"orderId": f"ORD-{uuid.uuid4().hex[:12]}", "churnTimePolicy": "now"}
        )
        ids.add(await started(bench, SagaKind.ORDER_CANCELLATION, request))
    await wait_closed(bench, ids, SagaKind.ORDER_CANCELLATION)
    # Naive: the PUT, then one poll (a "now" cancellation is final at once).
    return Workload("Rebilly cancellation, churn now", count, route_counts(bench), 2)


async def airalo_batch(bench: Bench, orders: int) -> Workload:
    bench.reset_sandbox()
    due = datetime.now(UTC) + timedelta(days=5)
    with bench.admin() as admin:
        request_ids = [
            admin.airalo_seed_future_order(f"pkg-bench-{i}", due)["request_id"]
            for i in range(orders)
        ]
    request = FutureOrderCancellationRequest.model_validate({"requestIds": request_ids})
    workflow_id = await started(bench, SagaKind.FUTURE_ORDER_CANCELLATION, request)
    await wait_closed(bench, {workflow_id}, SagaKind.FUTURE_ORDER_CANCELLATION)
    routes = route_counts(bench)
    # Naive: a token, then per order a look-up and a cancel.
    return Workload(f"Airalo, {orders} future orders in one saga", 1, routes, 1 + 2 * orders)


def table(workloads: list[Workload]) -> str:
    rows = [
        [
            w.name,
            str(w.sagas),
            summarise(w.routes, w.sagas),
            f"{w.ours:.2f}",
            f"{w.naive:.2f}",
            f"{w.naive / w.ours:.1f}x" if w.ours else "-",
        ]
        for w in workloads
    ]
    return report.markdown_table(
        ["workload", "sagas", "requests per saga by route", "ours", "naive", "naive / ours"],
        rows,
    )


async def main(args: argparse.Namespace) -> str:
    async with running(args.target) as bench:
        workloads = [
            await stn_busy(bench, args.sagas),
            await stn_revoke(bench, args.sagas),
            await rebilly_now(bench, args.sagas),
            await airalo_batch(bench, AIRALO_ORDERS),
        ]
    body = table(workloads)
    section = report.Section(
        "calls",
        "3. Provider efficiency: HTTP requests per saga",
        f"python -m bench.calls --sagas {args.sagas}",
        __doc__ or "",
        body,
    )
    return report.publish(section, args.target)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = cli.parser("python -m bench.calls", __doc__)
    parser.add_argument("--sagas", type=int, default=20, help="sagas per sTN/Rebilly workload")
    return parser.parse_args(argv)


if __name__ == "__main__":
    cli.run(main(parse_args()))
