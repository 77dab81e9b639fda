"""Benchmark 2: a month-end wave, thousands of scheduled terminations due at once.

``python -m bench.wave [--sagas 10000]``: each variant starts ``--sagas`` sTN
terminations (32 start requests in flight), every one with the **same wish date**,
set ``--sagas / rate + 20 s`` ahead so that all are submitted and waiting on their
timers before it (``rate``: 0.85 of the submits/s measured just before on 300 bare
sagas, or ``--start-rate``); then they all fall due together. Variants, one after another
on the same server (the sandbox is reset between them):

* **bare**: :class:`bench.bare.BareSaga` of the same shape (submit, timer, poll) whose
  activities make the product's two sTN calls, SDK default worker options;
* **product, SDK defaults** (the "before") and **product, tuned** (the shipped
  ``CANCEL_WORKER_*`` defaults, the "after").

Reported per variant: start requests/s (the client's side; the worker submits
behind it); worker RSS once a quarter, half and all of the sagas had been submitted
to sTN (the sandbox's log; flat means memory does not grow with waiting sagas) and
its peak while they fire; **lateness**, the seconds from the wish date to the saga's first
QueryActivation of its termination at the sandbox (the moment the saga acts after
its timer; the sandbox's call log, the same clock for every variant), p50/p99/max;
the wish date to the run's close (server time) p99; the **drain rate**, sagas
divided by the last saga's lateness; and the ratio of each drain rate to bare's.
A variant whose last submit came after the wish date is marked: its lateness then
includes start-up.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import cli, report
from bench.measure import ProcessSampler, Spread, start_all
from bench.phases import Kind, Phase, run_phase, start_one, subscription_ids
from bench.profile import Profile, Profiler, profile_table
from bench.target import SDK_DEFAULTS, Bench, running

QUERY_ACTIVATION = "/api/QueryActivation"
#: The wish date's lead assumes this share of the calibrated submit rate.
SAFETY = 0.85
SUBMIT = "/api/TerminateSubscription"


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    kind: Kind
    worker_env: dict[str, str] | None = None

    @property
    def process(self) -> str:
        return "worker" if self.kind is Kind.PRODUCT else "bare worker"


VARIANTS = {
    "bare": Variant("bare", "bare Temporal (submit, timer, poll)", Kind.BARE_HTTP),
    "bare-sa": Variant(
        "bare-sa",
        "bare + the product's search attributes",
        Kind.BARE_HTTP_UPSERTS,
    ),
    "default": Variant(
        "default", "product, SDK default worker options", Kind.PRODUCT, SDK_DEFAULTS
    ),
    "tuned": Variant("tuned", "product, tuned worker (shipped defaults)", Kind.PRODUCT, {}),
}


def variant(spec: str) -> Variant:
    """``tuned`` or ``tuned+MAX_CACHED_WORKFLOWS=250``: a product variant with some
    ``CANCEL_WORKER_*`` settings over its own."""
    name, *overrides = spec.split("+")
    base = VARIANTS[name]
    if not overrides:
        return base
    if base.kind is not Kind.PRODUCT:
        raise ValueError(f"only product variants take worker settings: {spec}")
    extra = dict(override.split("=", 1) for override in overrides)
    env = {**(base.worker_env or {}), **{f"CANCEL_WORKER_{k}": v for k, v in extra.items()}}
    label = f"{base.label}, " + ", ".join(f"{k.lower()}={v}" for k, v in extra.items())
    return Variant(spec.replace("+", "_").replace("=", "-"), label, base.kind, env)


@dataclass
class WaveResult:
    variant: Variant
    phase: Phase
    wish_date: datetime
    acted: Spread
    closed_p99: float
    drain: float
    last_submit_margin: float
    rss_waiting: list[float]
    rss_peak: float
    polls: int
    profile: Profile | None = None


async def one_wave(
    bench: Bench, variant: Variant, sagas: int, start_rate: float, profile_dir: Path | None
) -> WaveResult:
    if variant.worker_env is not None:
        await bench.restart_worker(variant.worker_env)
    lead = timedelta(seconds=sagas / start_rate + 20)
    wish_date = (datetime.now(UTC) + lead).replace(microsecond=0)
    pids = bench.pids
    spy = None
    if profile_dir is not None:
        spy = Profiler.attach(pids[variant.process].main, profile_dir / f"{variant.name}.txt")
    try:
        async with ProcessSampler(pids) as sampler:
            phase = await run_phase(
                bench,
                variant.kind,
                sagas,
                label=variant.label,
                wish_date=wish_date,
                within=lead.total_seconds() + 3600,
            )
    finally:
        profile = spy.stop() if spy is not None else None
    due = wish_date.timestamp()
    samples = sampler.samples.get(variant.process, [])

    submits = sorted(
        datetime.fromisoformat(str(call["at"])).timestamp()
        for call in bench.provider_calls("stn", "POST", SUBMIT)
    )
    # RSS once a quarter, half, all of the sagas had been submitted (the first sample
    # after that submit; "all": the last sample before the wish date).
    rss_waiting = []
    for share in (0.25, 0.5):
        submitted = submits[max(0, round(share * len(submits)) - 1)]
        rss_waiting.append(next((rss for t, rss in samples if t >= submitted), 0.0))
    rss_waiting.append(max((rss for t, rss in samples if t <= due), default=0.0))
    rss_peak = sampler.peak(variant.process, since=due)

    first_poll: dict[str, datetime] = {}
    polls = bench.provider_calls("stn", "GET", QUERY_ACTIVATION)
    for call in polls:
        query = call.get("query")
        activation = query.get("id") if isinstance(query, dict) else None
        at = datetime.fromisoformat(str(call["at"]))
        if isinstance(activation, str) and at >= wish_date:
            first_poll[activation] = min(at, first_poll.get(activation, at))
    acted = [(at - wish_date).total_seconds() for at in first_poll.values()]
    closed = [(run.closed - wish_date).total_seconds() for run in phase.runs]
    spread = Spread.of(acted)
    return WaveResult(
        variant,
        phase,
        wish_date,
        spread,
        Spread.of(closed).p99,
        len(acted) / spread.max if spread.max > 0 else 0.0,
        due - submits[-1],
        rss_waiting,
        rss_peak,
        len(polls),
        profile,
    )


def table(results: list[WaveResult]) -> str:
    bare = next((r.drain for r in results if r.variant.kind is Kind.BARE_HTTP), 0.0)
    rows = []
    for r in results:
        margin = f"{r.last_submit_margin:.0f} s" + ("" if r.last_submit_margin > 0 else " (late!)")
        rows.append(
            [
                r.variant.label,
                str(len(r.phase.runs)),
                f"{r.phase.starts_per_second:.0f}",
                margin,
                " / ".join(f"{rss:.0f}" for rss in r.rss_waiting),
                f"{r.rss_peak:.0f}",
                f"{r.acted.p50:.1f}",
                f"{r.acted.p99:.1f}",
                f"{r.acted.max:.1f}",
                f"{r.closed_p99:.1f}",
                f"{r.drain:.0f}",
                f"{r.drain / bare:.2f}x" if bare else "-",
                f"{r.polls / max(1, len(r.phase.runs)):.2f}",
                str(r.phase.failed),
            ]
        )
    return report.markdown_table(
        [
            "variant",
            "sagas",
            "starts/s",
            "last submit before wish date",
            "worker RSS MiB at ¼ / ½ / all submitted",
            "worker RSS MiB peak while firing",
            "lateness p50 s",
            "lateness p99 s",
            "lateness max s",
            "wish date → closed p99 s",
            "drain sagas/s",
            "drain vs bare",
            "polls/saga",
            "not completed",
        ],
        rows,
    )


async def calibrate(bench: Bench, sagas: int = 300) -> float:
    """Submits per second the bare worker gets through on this machine now: sagas due
    tomorrow, timed from the first start until sTN has seen every submit."""
    began = time.monotonic()
    phase_start = datetime.now(UTC) + timedelta(days=1)
    subscriptions = subscription_ids(sagas)
    bench.reset_sandbox()
    await start_all(
        sagas, lambda i: start_one(bench.client, Kind.BARE_HTTP, subscriptions[i], phase_start)
    )
    deadline = began + 300
    while len(bench.provider_calls("stn", "POST", SUBMIT)) < sagas:
        bench.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError("calibration: the submits did not all arrive in 300 s")
        await asyncio.sleep(0.5)
    rate = sagas / (time.monotonic() - began)
    for subscription in subscriptions:
        await bench.client.get_workflow_handle(f"bare-{subscription}").terminate("calibrated")
    return rate


async def measure(
    bench: Bench,
    sagas: int,
    start_rate: float | None,
    variants: list[str],
    profile_dir: Path | None,
) -> tuple[list[WaveResult], float]:
    if start_rate is None:
        # The product submits a little slower than bare, and the machine may get busier.
        start_rate = SAFETY * await calibrate(bench)
    results = [
        await one_wave(bench, variant(spec), sagas, start_rate, profile_dir) for spec in variants
    ]
    return results, start_rate


async def main(args: argparse.Namespace) -> str:
    async with running(args.target) as bench:
        results, start_rate = await measure(
            bench, args.sagas, args.start_rate, args.variants.split(","), args.profile
        )
    body = table(results)
    profiled = [(r.variant.label, r.profile) for r in results if r.profile is not None]
    if profiled:
        body += "\n\nWhere the worker's time went (py-spy samples, whole phase):\n\n"
        body += profile_table(profiled)
    section = report.Section(
        "wave",
        f"2. Scheduled at scale: a wave of {args.sagas:,} sagas due at the same moment",
        f"python -m bench.wave --sagas {args.sagas} --variants {args.variants}"
        + (f" --start-rate {args.start_rate:g}" if args.start_rate else "")
        + (" --profile DIR" if args.profile else "")
        + f" (wish date set for {start_rate:.0f} submits/s)",
        __doc__ or "",
        body,
    )
    return report.publish(section, args.target)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = cli.parser("python -m bench.wave", __doc__)
    parser.add_argument("--sagas", type=int, default=10_000, help="sagas per variant")
    parser.add_argument(
        "--start-rate",
        type=float,
        help="submits/s assumed when setting the wish date (it must come after the last); "
        "default: measured before the waves (300 bare sagas), times 0.85",
    )
    parser.add_argument(
        "--variants",
        default="bare,default,tuned",
        help=f"comma-separated, in order, of: {', '.join(VARIANTS)}",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record each variant's worker with py-spy into DIR (raw samples) and report "
        "where its time went",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    cli.run(main(parse_args()))
