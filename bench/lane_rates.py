"""Benchmark 6: each provider's lane limit, as the provider sees it during a wave.

``python -m bench.lane_rates [--wave stn=600,rebilly=600,airalo=150]
[--limits stn=20,rebilly=10,airalo=5]``: a mixed wave of immediate sagas arrives
one file after another (``--wave``: sTN terminations, then Rebilly order
cancellations with ``churnTimePolicy=now``, then Airalo future-order cancellations of
one order each), sized so that each provider's calls take about a minute at its
limit. Two shapes of the worker, one after the other on the same server, the sandbox
reset between them:

* **lanes** (shipped): each provider's lane at its limit
  (``CANCEL_<PROVIDER>_MAX_CALLS_PER_SECOND``, ``--limits``);
* **one queue, one cap** (the release before lanes, ``CANCEL_WORKER_HOLD_PATCHES=
  provider-lanes``): every call on the sagas' own task queue under one limit, the
  sum of the lanes' (``CANCEL_WORKER_MAX_TASK_QUEUE_ACTIVITIES_PER_SECOND``): the same
  budget, but a provider whose file is being worked through gets all of it. (The
  README before lanes advised a cap at the lowest provider's rate instead: every
  limit held, and the whole wave at that rate.)

Reported per shape and provider, from the sandbox's call log (every HTTP request
that reached the provider, a token fetch and a retry's look-up included): the
provider's calls, per saga by route, the **busiest 10 seconds** (the most calls in
any 10-second window, per second) and its ratio to the provider's limit (the issue's
bound: 1.5x), the mean rate from its first call to its last, and the seconds from the
first start until every saga of the wave had closed.

A lane's limit counts **activities** (Temporal hands out that many tasks a second),
not HTTP requests: an activity that makes several requests multiplies it at the
provider. Every provider call is one request per activity: Airalo's listing reads one
page of one status per activity (patch ``airalo-list-page-by-page``; runs before it
read every page of pending, failed and retry in one activity, 4 requests per saga here,
3.8-4.0x Airalo's limit). The one-queue shape holds that patch too, so its Airalo
listing is the old one.
"""

from __future__ import annotations

import argparse
import functools
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from bench import cli, report
from bench.calls import started, summarise
from bench.lanes import Shape, one_queue, with_lanes
from bench.measure import busiest_window, call_times, closed_runs, start_all
from bench.phases import subscription_ids
from bench.target import Bench, running
from domain.airalo import FutureOrderCancellationRequest
from domain.common import Provider, SagaKind
from domain.rebilly import OrderCancellationRequest
from domain.stn import TerminationRequest

WINDOW_SECONDS = 10.0
#: Calls per second per provider (the issue's example).
LIMITS: dict[str, float] = {Provider.STN: 20.0, Provider.REBILLY: 10.0, Provider.AIRALO: 5.0}
#: Sagas per provider: about a minute of calls each at ``LIMITS`` (a termination makes
#: two sTN calls, an order cancellation one Rebilly call, a future-order cancellation
#: two or three Airalo calls: a listing page or two, the cancel).
WAVE: dict[str, float] = {Provider.STN: 600, Provider.REBILLY: 600, Provider.AIRALO: 150}
WITHIN = 3600.0


@dataclass(frozen=True)
class Lane:
    provider: str
    limit: float
    sagas: int
    calls: int
    busiest: int
    mean: float
    routes: Counter[str]


@dataclass(frozen=True)
class Result:
    shape: Shape
    lanes: list[Lane]
    closed_after: float
    not_completed: int


Requests = list[tuple[SagaKind, BaseModel]]


def requests_for(bench: Bench, provider: str, count: int) -> Requests:
    """``count`` sagas that each call ``provider`` (Airalo's orders seeded first)."""
    if provider == Provider.STN:
        return [
            (SagaKind.LINE_TERMINATION, TerminationRequest(subscription_id=subscription))
            for subscription in subscription_ids(count)
        ]
    if provider == Provider.REBILLY:
        return [
            (
                SagaKind.ORDER_CANCELLATION,
                OrderCancellationRequest.model_validate(
                    {"orderId": f"ORD-{uuid.uuid4().hex[:12]}", "churnTimePolicy": "now"}
                ),
            )
            for _ in range(count)
        ]
    due = datetime.now(UTC) + timedelta(days=5)
    with bench.admin() as admin:
        ids = [
            str(admin.airalo_seed_future_order(f"pkg-bench-rates-{n}", due)["request_id"])
            for n in range(count)
        ]
    return [
        (
            SagaKind.FUTURE_ORDER_CANCELLATION,
            FutureOrderCancellationRequest.model_validate({"requestIds": [request_id]}),
        )
        for request_id in ids
    ]


async def wave(
    bench: Bench, shape: Shape, sizes: dict[str, int], limits: dict[str, float]
) -> Result:
    await bench.restart_worker(shape.worker_env)
    bench.reset_sandbox()
    files = {provider: requests_for(bench, provider, count) for provider, count in sizes.items()}
    began = datetime.now(UTC)
    ids: set[str] = set()
    for requests in files.values():  # one file after another
        await start_all(len(requests), functools.partial(start_nth, bench, requests, ids))
    since = (began - timedelta(seconds=1)).replace(microsecond=0).isoformat()
    runs = await closed_runs(
        bench.client, f"StartTime >= '{since}'", ids, within=WITHIN, health=bench.check_alive
    )
    lanes = []
    for provider, count in sizes.items():
        calls = bench.provider_calls(provider)
        times = call_times(calls)
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        lanes.append(
            Lane(
                provider,
                limits[provider],
                count,
                len(times),
                busiest_window(times, WINDOW_SECONDS),
                (len(times) - 1) / span if span > 0 else 0.0,
                Counter(f"{provider} {call['method']} {call['path']}" for call in calls),
            )
        )
    return Result(
        shape,
        lanes,
        (max(run.closed for run in runs) - began).total_seconds(),
        sum(1 for run in runs if run.status != "COMPLETED"),
    )


async def start_nth(bench: Bench, requests: Requests, ids: set[str], index: int) -> None:
    kind, request = requests[index]
    ids.add(await started(bench, kind, request))


def table(results: list[Result]) -> str:
    rows = []
    for r in results:
        for lane in r.lanes:
            rate = lane.busiest / WINDOW_SECONDS
            rows.append(
                [
                    r.shape.label,
                    lane.provider,
                    f"{lane.limit:g}",
                    str(lane.sagas),
                    str(lane.calls),
                    summarise(lane.routes, lane.sagas),
                    f"{rate:.1f}",
                    f"{rate / lane.limit:.2f}x",
                    f"{lane.mean:.1f}",
                    f"{r.closed_after:.0f}",
                    str(r.not_completed),
                ]
            )
    return report.markdown_table(
        [
            "shape",
            "provider",
            "its limit, calls/s",
            "sagas",
            "calls at the provider",
            "calls per saga by route",
            "busiest 10 s, calls/s",
            "busiest vs limit",
            "mean calls/s, first to last call",
            "wave closed after s",
            "sagas not completed",
        ],
        rows,
    )


def by_provider(spec: str) -> dict[str, float]:
    """``stn=600,rebilly=600``: a number per provider, in the order given."""
    numbers = {}
    for part in spec.split(","):
        provider, _, value = part.partition("=")
        if provider not in set(Provider):
            raise ValueError(f"{provider!r} is none of {', '.join(Provider)}")
        numbers[provider] = float(value)
    return numbers


async def measure(bench: Bench, sizes: dict[str, int], limits: dict[str, float]) -> list[Result]:
    shapes = (with_lanes(limits), one_queue(sum(limits[provider] for provider in sizes)))
    return [await wave(bench, shape, sizes, limits) for shape in shapes]


def spec(numbers: Mapping[str, float]) -> str:
    return ",".join(f"{provider}={value:g}" for provider, value in numbers.items())


async def main(args: argparse.Namespace) -> str:
    sizes = {provider: int(count) for provider, count in by_provider(args.wave).items()}
    limits: dict[str, float] = {**LIMITS, **by_provider(args.limits)}
    async with running(args.target) as bench:
        results = await measure(bench, sizes, limits)
    section = report.Section(
        "lane-rates",
        "6. Provider lanes: each provider's calls per second during a wave",
        f"python -m bench.lane_rates --wave {spec(sizes)} --limits {spec(limits)}",
        __doc__ or "",
        table(results),
    )
    return report.publish(section, args.target)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = cli.parser("python -m bench.lane_rates", __doc__)
    parser.add_argument("--wave", default=spec(WAVE), help="sagas per provider, in arrival order")
    parser.add_argument("--limits", default=spec(LIMITS), help="each lane's calls per second")
    return parser.parse_args(argv)


if __name__ == "__main__":
    cli.run(main(parse_args()))
