"""Benchmark 5: one provider's backlog against another provider's deadline (issue #20).

``python -m bench.lanes [--terminations 600] [--samples 5] [--sample-every 30]``: the
scenario an operator tried on ``make run`` before lanes. sTN's calls are capped at
3 per second; ``--terminations`` immediate sTN terminations arrive at once (a month-end
churn file); then an Airalo future-order cancellation whose cut-off (24 hours before
the order's due date) is 4 minutes away is started, and another every
``--sample-every`` seconds while sTN's backlog lasts, ``--samples`` in all. Each
sample is a fresh order (Airalo's due dates have minute resolution: its cut-off is
4:00-4:59 away when its saga starts). Two shapes of the worker, one after the other
on the same server, the sandbox reset between them:

* **lanes** (shipped): each provider's calls on a task queue of their own; sTN's lane
  at 3 calls/s (``CANCEL_STN_MAX_CALLS_PER_SECOND=3``), Airalo's unlimited; within a
  lane, a call racing its cut-off goes first;
* **one queue, one cap** (the release before lanes): every provider call on the
  sagas' own task queue under one limit at the lowest provider's rate
  (``CANCEL_WORKER_MAX_TASK_QUEUE_ACTIVITIES_PER_SECOND=3``), new runs started with
  ``CANCEL_WORKER_HOLD_PATCHES`` holding ``provider-lanes`` and the generations after
  it, so they take the path of the release before.

Reported per shape: the seconds from each cancellation's start to its
``POST /v2/cancel-future-orders`` at the sandbox (the call log; "not sent" when the
saga never sent it), p50 and max; its start to the saga's close; the orders'
outcomes (``CANCELLED``, or ``MISSED_DEADLINE``: the eSIM order fires and is
billed); how long sTN's backlog took to drain (the first start to the last
termination's close) and sTN's busiest 10 seconds at the sandbox against its cap.
The issue's finding before lanes: ``MISSED_DEADLINE`` after 369 s; its target with
lanes: the call reaches Airalo within 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bench import cli, report
from bench.calls import started
from bench.measure import Spread, busiest_window, call_times, closed_runs, start_all
from bench.phases import Kind, start_one, subscription_ids
from bench.target import Bench, running
from config.settings import lane_limit_variable
from domain.airalo import CANCELLATION_WINDOW, FutureOrderCancellationRequest
from domain.airalo import FutureOrderCancellationStatus as Status
from domain.common import Provider, SagaKind
from workflows import patches

STN_LIMIT = 3.0
#: How far the sampled order's cut-off is when its cancellation starts (at least).
CUTOFF_LEAD = timedelta(minutes=4)
CANCEL = "/v2/cancel-future-orders"
#: The sTN backlog and every sample must be done within this.
WITHIN = 3600.0


@dataclass(frozen=True)
class Shape:
    """How the worker calls providers: on their lanes, or all on one queue (before)."""

    name: str
    label: str
    worker_env: dict[str, str]


def with_lanes(limits: Mapping[str, float]) -> Shape:
    """Each provider on its lane, those in ``limits`` capped (the shipped shape)."""
    env = {lane_limit_variable(provider): f"{limit:g}" for provider, limit in limits.items()}
    caps = ", ".join(f"{provider} {limit:g}/s" for provider, limit in limits.items())
    return Shape("lanes", f"lanes (shipped): {caps}", env)


def before_lanes() -> str:
    """``CANCEL_WORKER_HOLD_PATCHES`` for new runs as the release before lanes (the
    worker holds every newer generation's marker with it: ``patches.holding``)."""
    return patches.PROVIDER_LANES


def one_queue(cap: float) -> Shape:
    """Every provider call on the sagas' queue, ``cap`` calls/s for all (before lanes)."""
    env = {
        "CANCEL_WORKER_HOLD_PATCHES": before_lanes(),
        "CANCEL_WORKER_MAX_TASK_QUEUE_ACTIVITIES_PER_SECOND": f"{cap:g}",
    }
    return Shape("one-queue", f"one queue, one cap of {cap:g}/s (before lanes)", env)


@dataclass
class Sample:
    """One Airalo order racing its cut-off, and what became of its cancellation."""

    request_id: str
    workflow_id: str
    started: datetime
    cutoff: datetime
    outcome: str = ""
    closed_after: float = 0.0
    #: Seconds from the start to the cancel call at Airalo; None: never sent.
    reached_after: float | None = None


@dataclass
class Result:
    shape: Shape
    terminations: int
    samples: list[Sample]
    drain_seconds: float
    not_completed: int
    stn_busiest: int
    stn_calls: int
    outcomes: Counter[str] = field(default_factory=Counter)


def due_for_cutoff(now: datetime, lead: timedelta = CUTOFF_LEAD) -> datetime:
    """An Airalo due date (whole minutes) whose cut-off is at least ``lead`` after ``now``."""
    due = now + CANCELLATION_WINDOW + lead
    whole = due.replace(second=0, microsecond=0)
    return whole if whole >= due else whole + timedelta(minutes=1)


async def start_sample(bench: Bench, n: int, lead: timedelta) -> Sample:
    """Seed an Airalo order whose cut-off is ``lead`` away and start its cancellation."""
    due = due_for_cutoff(datetime.now(UTC), lead)
    with bench.admin() as admin:
        request_id = str(admin.airalo_seed_future_order(f"pkg-bench-lanes-{n}", due)["request_id"])
    request = FutureOrderCancellationRequest.model_validate({"requestIds": [request_id]})
    at = datetime.now(UTC)
    workflow_id = await started(bench, SagaKind.FUTURE_ORDER_CANCELLATION, request)
    return Sample(request_id, workflow_id, at, due - CANCELLATION_WINDOW)


async def settle(bench: Bench, sample: Sample) -> None:
    """Wait for the sample's saga to end; its outcome and when it closed."""
    handle = bench.client.get_workflow_handle(sample.workflow_id, result_type=Status)
    status = await asyncio.wait_for(handle.result(), WITHIN)
    sample.outcome = ", ".join(outcome.outcome.value for outcome in status.outcomes)
    sample.closed_after = (datetime.now(UTC) - sample.started).total_seconds()
    description = await handle.describe()
    if description.close_time is not None:
        sample.closed_after = (description.close_time - sample.started).total_seconds()


def reached(bench: Bench, samples: list[Sample]) -> None:
    """Each sample's first cancel call at Airalo (the sandbox's call log)."""
    for call in bench.provider_calls(Provider.AIRALO, "POST", CANCEL):
        body = call.get("requestBody")
        ids = body.get("request_ids", []) if isinstance(body, dict) else []
        at = datetime.fromisoformat(str(call["at"]))
        for sample in samples:
            if sample.request_id in ids:
                seconds = (at - sample.started).total_seconds()
                if sample.reached_after is None or seconds < sample.reached_after:
                    sample.reached_after = seconds


async def scenario(
    bench: Bench, shape: Shape, terminations: int, samples: int, every: float, lead: timedelta
) -> Result:
    await bench.restart_worker(shape.worker_env)
    bench.reset_sandbox()
    subscriptions = subscription_ids(terminations)
    began = datetime.now(UTC)
    await start_all(
        terminations,
        lambda i: start_one(bench.client, Kind.PRODUCT, subscriptions[i], None),
    )
    arrived = time.monotonic()
    sampled = []
    for n in range(samples):
        # The scenario's schedule (a deadline call every ``every`` seconds), not a wait
        # for anything to happen.
        await asyncio.sleep(max(0.0, arrived + n * every - time.monotonic()))
        bench.check_alive()
        sampled.append(await start_sample(bench, n, lead))
    await asyncio.gather(*(settle(bench, sample) for sample in sampled))
    # Visibility's StartTime has a second's resolution on SQLite: a second of margin.
    since = (began - timedelta(seconds=1)).replace(microsecond=0).isoformat()
    query = f"WorkflowType = '{Kind.PRODUCT.workflow_type}' AND StartTime >= '{since}'"
    ids = {f"terminate-{subscription}" for subscription in subscriptions}
    runs = await closed_runs(bench.client, query, ids, within=WITHIN, health=bench.check_alive)
    reached(bench, sampled)
    stn = call_times(bench.provider_calls(Provider.STN))
    last_close = max(run.closed for run in runs)
    return Result(
        shape,
        terminations,
        sampled,
        (last_close - began).total_seconds(),
        sum(1 for run in runs if run.status != "COMPLETED"),
        busiest_window(stn),
        len(stn),
        Counter(sample.outcome for sample in sampled),
    )


def seconds_cell(values: list[float]) -> str:
    """``p50 / max`` of some seconds."""
    spread = Spread.of(values)
    return f"{spread.p50:.1f} / {spread.max:.1f}"


def table(results: list[Result]) -> str:
    rows = []
    for r in results:
        sent = [s.reached_after for s in r.samples if s.reached_after is not None]
        unsent = len(r.samples) - len(sent)
        rows.append(
            [
                r.shape.label,
                str(r.terminations),
                str(len(r.samples)),
                (seconds_cell(sent) if sent else "-") + (f" ({unsent} not sent)" if unsent else ""),
                seconds_cell([s.closed_after for s in r.samples]),
                ", ".join(f"{n} {outcome}" for outcome, n in sorted(r.outcomes.items())),
                f"{r.drain_seconds:.0f}",
                f"{r.stn_busiest / 10:.1f} ({r.stn_busiest / 10 / STN_LIMIT:.2f}x)",
                str(r.not_completed),
            ]
        )
    return report.markdown_table(
        [
            "shape",
            "sTN terminations at once",
            "Airalo cancellations, cut-off ~4 min away",
            "start → cancel call at Airalo s, p50 / max",
            "start → saga closed s, p50 / max",
            "orders",
            "sTN backlog drained in s",
            f"sTN busiest 10 s, calls/s (vs cap {STN_LIMIT:g})",
            "terminations not completed",
        ],
        rows,
    )


async def measure(
    bench: Bench, terminations: int, samples: int, every: float, lead: timedelta = CUTOFF_LEAD
) -> list[Result]:
    shapes = (with_lanes({Provider.STN: STN_LIMIT}), one_queue(STN_LIMIT))
    return [await scenario(bench, shape, terminations, samples, every, lead) for shape in shapes]


async def main(args: argparse.Namespace) -> str:
    async with running(args.target) as bench:
        results = await measure(bench, args.terminations, args.samples, args.sample_every)
    section = report.Section(
        "lanes",
        "5. Provider lanes: an Airalo deadline beside sTN's month-end backlog",
        f"python -m bench.lanes --terminations {args.terminations} --samples {args.samples} "
        f"--sample-every {args.sample_every:g}",
        __doc__ or "",
        table(results),
    )
    return report.publish(section, args.target)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = cli.parser("python -m bench.lanes", __doc__)
    parser.add_argument(
        "--terminations", type=int, default=600, help="immediate sTN terminations at once"
    )
    parser.add_argument(
        "--samples", type=int, default=5, help="Airalo cancellations near their cut-off"
    )
    parser.add_argument(
        "--sample-every",
        type=float,
        default=30.0,
        help="seconds between two of them (the first right after the terminations)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    cli.run(main(parse_args()))
