"""The seven scenarios. Each only drives: start the sagas, inject its faults, return.

``run.run_scenario`` does the rest (fresh stack, settling, the checks, the report).
Scenarios 4-7 drive through the product's entry points and live in their own
modules (``storms``, ``hostile``, ``poison``, ``contract``).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from domain.common import SagaKind
from reliability import recovery
from reliability.bulk import BulkReschedule
from reliability.contract import ApiContract
from reliability.faults import (
    background_faults,
    crash_worker,
    fault_window,
    next_cutoff,
)
from reliability.hostile import HostileInput
from reliability.invariants import Violation
from reliability.observe import RunRecord
from reliability.poison import PoisonOperatorInput
from reliability.provider_state import ProviderState
from reliability.run import Expectation, Scenario, ScenarioContext, outcome_events_down_seconds
from reliability.storms import DuplicateStorms
from reliability.workload import SagaPlan


async def _at(begin: float, moment: float) -> None:
    await asyncio.sleep(max(0.0, begin + moment - time.monotonic()))


class WorkerCrashes:
    name = "worker-crashes"
    title = "Worker crashes"
    summary = (
        "SIGKILL the worker at random moments (each kill waits, up to 6 s, until an "
        "activity is running on it), restart it 0.5-4 s later; a quarter of provider "
        "calls are slowed by 1.5 s so that kills land mid-call. One more kill a second "
        "after the outcome subscriber comes back, while it takes the retried deliveries."
    )

    async def drive(self, ctx: ScenarioContext) -> None:
        plans = ctx.factory.draw(ctx.options.sagas)
        await ctx.seed(plans)
        await ctx.recorder.add_fault(mode="latency", latency_seconds=1.5, rate=0.25)
        window = ctx.scaled(20, 3)
        starting = asyncio.create_task(ctx.start_plans(plans, window))
        crashes = int(ctx.scaled(6, 1))
        span = ctx.scaled(window + 50, 5)
        begin = time.monotonic()
        moments = [(moment, True) for moment in (ctx.rng.uniform(3, span) for _ in range(crashes))]
        # And once while the outcome subscriber, back up, takes the retried deliveries
        # (each answer takes 0.5 s): the worker dies mid-delivery.
        moments.append((outcome_events_down_seconds(ctx) + 1.0, False))
        for moment, mid_activity in sorted(moments):
            await _at(begin, moment)
            await crash_worker(ctx, down=ctx.rng.uniform(0.5, 4.0), mid_activity=mid_activity)
        await starting


class ServerRestart:
    name = "server-restart"
    title = "Server restart"
    summary = (
        "SIGKILL the Temporal dev server twice and start it again on the same SQLite "
        "file: first for 15 s while sagas wait on timers (many fall due during the "
        "outage), then for 8 s while they poll and complete."
    )

    async def drive(self, ctx: ScenarioContext) -> None:
        plans = ctx.factory.draw(ctx.options.sagas)
        await ctx.seed(plans)
        window = ctx.scaled(15, 2)
        starting = asyncio.create_task(ctx.start_plans(plans, window))
        begin = time.monotonic()
        for moment, down in (
            (window + 5, ctx.scaled(15, 3)),
            (ctx.scaled(55, 12), ctx.scaled(8, 2)),
        ):
            await _at(begin, moment)
            await ctx.stack.restart_server(down)
            print(f"  [{ctx.name}] server SIGKILLed, back after {down:.0f} s", flush=True)
        await starting
        ctx.expectations.append(_timers_fell_due(ctx))


def _timers_fell_due(ctx: ScenarioContext) -> Expectation:
    """Notes how many timers fell due while the server was down (the point of it)."""

    def check(runs: list[RunRecord], provider: ProviderState) -> list[Violation]:
        due = sum(
            recovery.timers_due_during(runs, outage)
            for outage in ctx.stack.outages
            if outage.component == "server"
        )
        ctx.notes.append(f"timers that fell due while the server was down: {due}")
        return []

    return check


class ProviderFaults:
    name = "provider-faults"
    title = "Provider faults and outages"
    summary = (
        "On every route of every provider: 503 (5 %), 500 (2 %), 429 with Retry-After "
        "2 s (5 %), lost responses (4 %), timeouts (2 %: the call is held 6 s, past the "
        "worker's 5 s HTTP timeout, and still applied). sTN down (503) for 2 minutes; "
        "Airalo's write routes down across the cut-off of a group of orders due just over "
        "24 h ahead; then the sandbox SIGKILLed and restarted on its state file."
    )

    async def drive(self, ctx: ScenarioContext) -> None:
        deadline_count = max(3, ctx.options.sagas // 10)
        cutoff = next_cutoff(ctx.scaled(50, 15))
        plans = ctx.factory.draw(ctx.options.sagas - deadline_count)
        deadline_plans = [self._deadline_plan(ctx, cutoff) for _ in range(deadline_count)]
        plans = ctx.rng.sample(plans + deadline_plans, len(plans) + deadline_count)
        await ctx.seed(plans)
        for spec in background_faults():
            await ctx.recorder.add_fault(**spec)
        airalo_down = (cutoff - datetime.now(UTC)).total_seconds() + 15
        airalo = asyncio.create_task(
            fault_window(
                ctx,
                "airalo",
                airalo_down,
                "503 on POST cancel-future-orders and future-orders",
                provider="airalo",
                method="POST",
                path="/v2/(cancel-future-orders|future-orders)",
                mode="error",
                status=503,
            )
        )
        window = ctx.scaled(20, 3)
        starting = asyncio.create_task(ctx.start_plans(plans, window))
        await asyncio.sleep(ctx.scaled(25, 4))
        await fault_window(
            ctx,
            "stn",
            ctx.scaled(120, 5),
            "503 on every route",
            provider="stn",
            mode="error",
            status=503,
        )
        await asyncio.sleep(ctx.scaled(5, 1))
        await self._restart_sandbox(ctx, down=ctx.scaled(10, 2))
        await starting
        await airalo
        ctx.expectations.append(_missed_deadlines(deadline_plans))
        ctx.notes.append(f"deadline group: {deadline_count} sagas, cut-off {cutoff:%H:%M} UTC")

    def _deadline_plan(self, ctx: ScenarioContext, cutoff: datetime) -> SagaPlan:
        plan = ctx.factory.plan(SagaKind.FUTURE_ORDER_CANCELLATION, deadline=True)
        due = cutoff + timedelta(hours=24)
        plan.esim_seeds = [ctx.factory.esim(plan, n, due) for n in range(ctx.rng.choice([1, 2]))]
        plan.esim_ids = [seed.request_id for seed in plan.esim_seeds]
        return plan

    async def _restart_sandbox(self, ctx: ScenarioContext, down: float) -> None:
        blocked = datetime.now(UTC)
        await ctx.recorder.block_and_rescue()
        outage = await ctx.stack.restart_sandbox(down)
        outage.started = blocked
        await ctx.recorder.after_restart()
        ctx.counters["sandbox restarts"] += 1
        print(f"  [{ctx.name}] sandbox SIGKILLed and restarted on its state file", flush=True)


def _missed_deadlines(plans: list[SagaPlan]) -> Expectation:
    """Airalo down across the cut-off: every such order MISSED_DEADLINE, none cancelled."""
    wanted = {seed.request_id for plan in plans for seed in plan.esim_seeds}

    def check(runs: list[RunRecord], provider: ProviderState) -> list[Violation]:
        violations = []
        seen: set[str] = set()
        for run in runs:
            for outcome in (run.status or {}).get("outcomes") or []:
                request_id = outcome["requestId"]
                if request_id not in wanted:
                    continue
                seen.add(request_id)
                order = provider.future_orders.get(request_id)
                if (
                    outcome["outcome"] != "MISSED_DEADLINE"
                    or order is None
                    or order.status != "pending"
                ):
                    violations.append(
                        Violation(
                            run.workflow_id,
                            "deadline",
                            f"{request_id}: Airalo was down across its cut-off, want "
                            f"MISSED_DEADLINE and still pending, got {outcome['outcome']} and "
                            f"{order.status if order else 'no order'}",
                        )
                    )
        for request_id in sorted(wanted - seen):
            violations.append(Violation(request_id, "deadline", "no saga reported this order"))
        return violations

    return check


SCENARIOS: tuple[Scenario, ...] = (
    WorkerCrashes(),
    ServerRestart(),
    ProviderFaults(),
    DuplicateStorms(),
    HostileInput(),
    PoisonOperatorInput(),
    BulkReschedule(),
    ApiContract(),
)
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}
