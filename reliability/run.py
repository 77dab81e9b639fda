"""One scenario, start to finish: stack up, drive, settle, observe, check, stack down.

A scenario only *drives* (starts sagas, injects its faults, plays the operator);
everything before and after is the same for all seven and lives here: the fresh
stack, the seeded workload, the planned operator requests, the progress line,
waiting until every saga has settled, and the checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Protocol

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from config.settings import OrchestratorSettings
from domain.common import InvalidRequest
from reliability import invariants, observe, recovery
from reliability import outcomes as outcome_events
from reliability.harness import TASK_QUEUE, Outage, Stack
from reliability.invariants import Violation
from reliability.observe import RunRecord
from reliability.provider_state import ProviderState, SandboxRecorder, read_provider_state
from reliability.workload import PlanFactory, SagaPlan, Timing, seed_sandbox, start
from sandbox.testing import SandboxAdmin
from starter import sagas

PROGRESS_SECONDS = 5.0
#: How long an operator request keeps trying while the server is down.
OPERATOR_PATIENCE_SECONDS = 90.0

Expectation = Callable[[list[RunRecord], ProviderState], list[Violation]]


@dataclass(frozen=True)
class Options:
    """What ``python -m reliability`` was asked for."""

    sagas: int = 200
    seed: int = 1
    #: Short outages and windows (the smoke run in ``make test``).
    quick: bool = False
    settle_seconds: float = 300.0


class Scenario(Protocol):
    name: str
    title: str
    #: What it injects, for the report.
    summary: str

    async def drive(self, ctx: ScenarioContext) -> None: ...


@dataclass
class ScenarioResult:
    name: str
    title: str
    summary: str
    sagas: int
    runs: int
    faults: Counter[str]
    crashes: int
    restarts: int
    final_states: Counter[str]
    recovery: recovery.Recovery
    violations: list[Violation]
    wall_seconds: float
    notes: list[str]
    workdir: Path
    error: str | None = None

    @property
    def failed(self) -> bool:
        return bool(self.violations) or self.error is not None


@dataclass
class ScenarioContext:
    """What a scenario's ``drive`` works with."""

    name: str
    options: Options
    stack: Stack
    client: Client
    admin: SandboxAdmin
    recorder: SandboxRecorder
    rng: Random
    factory: PlanFactory
    settings: OrchestratorSettings = field(default_factory=OrchestratorSettings)
    #: Workflow ids of every request the product accepted.
    accepted: set[str] = field(default_factory=set)
    plans: dict[str, SagaPlan] = field(default_factory=dict)
    counters: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    expectations: list[Expectation] = field(default_factory=list)
    allowed_task_failures: frozenset[str] = frozenset()
    operators: list[asyncio.Task[None]] = field(default_factory=list)
    started_at: float = field(default_factory=time.monotonic)

    @property
    def tag(self) -> str:
        return f"{self.name[:2]}{self.options.seed}"

    def elapsed(self) -> float:
        return time.monotonic() - self.started_at

    def scaled(self, full: float, quick: float) -> float:
        return quick if self.options.quick else full

    def use_timing(self, **overrides: float) -> None:
        """Draw the next plans with this timing; ``--quick`` keeps every wish date within
        ten seconds (and operator requests still fit before it)."""
        timing = Timing(**overrides)
        if self.options.quick:
            timing = replace(timing, wish_min=min(timing.wish_min, 3.0), wish_max=10.0)
        self.factory.timing = timing

    async def seed(self, plans: list[SagaPlan]) -> None:
        await asyncio.to_thread(seed_sandbox, self.admin, plans, self.tag)

    async def start_plans(self, plans: list[SagaPlan], window: float) -> None:
        """Start each plan at a random moment within ``window`` seconds (in order),
        each through ``starter.sagas``; its operator requests follow on their own."""
        offsets = sorted(self.rng.uniform(0, window) for _ in plans)
        begin = time.monotonic()
        for plan, offset in zip(plans, offsets, strict=True):
            await asyncio.sleep(max(0.0, begin + offset - time.monotonic()))
            await self.start_plan(plan)

    async def start_plan(self, plan: SagaPlan) -> str | None:
        """Start one plan; retried while the server is unreachable."""
        deadline = time.monotonic() + OPERATOR_PATIENCE_SECONDS
        while True:
            try:
                started = await start(self.client, plan, self.settings)
                break
            except RPCError as error:
                if time.monotonic() > deadline:
                    self.violations.append(
                        Violation(plan.label, "start", f"could not start: {error}")
                    )
                    return None
                await asyncio.sleep(1.0)
        self.accepted.add(started.workflow_id)
        self.plans[started.workflow_id] = plan
        self.counters["sagas started"] += 1
        if plan.revoke_at is not None or plan.reschedule_at is not None:
            self.operators.append(asyncio.create_task(self._operate(plan, started.workflow_id)))
        return started.workflow_id

    async def _operate(self, plan: SagaPlan, workflow_id: str) -> None:
        """The plan's operator: revoke or reschedule while the saga waits."""
        if plan.revoke_at is not None:
            await asyncio.sleep(plan.revoke_at)
            await self.operator_request(
                "revoke", lambda: sagas.revoke(self.client, workflow_id, "customer stayed")
            )
        elif plan.reschedule_at is not None:
            await asyncio.sleep(plan.reschedule_at)
            when = datetime.now(UTC).timestamp() + plan.reschedule_offset
            new = datetime.fromtimestamp(int(when), UTC)
            await self.operator_request(
                "reschedule", lambda: sagas.reschedule(self.client, workflow_id, new)
            )

    async def operator_request(self, kind: str, send: Callable[[], Awaitable[object]]) -> str:
        """Send an operator request the way cancelctl does; count how it ended."""
        deadline = time.monotonic() + OPERATOR_PATIENCE_SECONDS
        while True:
            try:
                await send()
                outcome = "applied"
            except WorkflowUpdateFailedError:
                outcome = "refused by the saga"
            except (sagas.SagaClosed, sagas.SagaNotFound):
                outcome = "refused: saga closed"
            except InvalidRequest:
                outcome = "refused at the edge"
            except RPCError as error:
                if time.monotonic() < deadline:
                    await asyncio.sleep(1.0)
                    continue
                outcome = f"unanswered ({error.status.name if error.status else 'RPC'})"
            self.counters[f"operator {kind}: {outcome}"] += 1
            return outcome

    async def wait_operators(self) -> None:
        if self.operators:
            await asyncio.gather(*self.operators)

    def outage(self, component: str, how: str) -> Outage:
        """A provider outage the scenario causes with faults (ended by the caller)."""
        outage = Outage(component, datetime.now(UTC), how=how)
        self.stack.outages.append(outage)
        return outage


def revoking(client: Client, workflow_id: str, reason: str) -> Callable[[], Awaitable[object]]:
    """A revoke of ``workflow_id``, for :meth:`ScenarioContext.operator_request`."""

    async def send() -> object:
        return await sagas.revoke(client, workflow_id, reason)

    return send


class Progress:
    """Prints one line every few seconds: scenario, sagas done/total, faults fired."""

    def __init__(self, ctx: ScenarioContext, total: int) -> None:
        self.ctx = ctx
        self.total = total
        self.settling = ""

    async def run(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_SECONDS)
            await revive(self.ctx)
            await self.print_line()

    async def print_line(self) -> None:
        ctx = self.ctx
        try:
            closed = await observe.count(ctx.client, "ExecutionStatus != 'Running'")
            done = f"{closed}/{max(self.total, len(ctx.accepted))} sagas closed"
        except RPCError:
            done = "server down"
        try:
            faults = await asyncio.to_thread(ctx.admin.faults)
            fired = sum(ctx.recorder.fired.values()) + sum(f["fired"] for f in faults)
        except Exception:  # the sandbox is being restarted
            fired = sum(ctx.recorder.fired.values())
        kills = sum(1 for outage in ctx.stack.outages if outage.how == "SIGKILL")
        minutes, seconds = divmod(int(ctx.elapsed()), 60)
        print(
            f"  [{ctx.name} {minutes}:{seconds:02d}] {done}, faults fired {fired}, "
            f"kills {kills}{self.settling}",
            flush=True,
        )


async def run_scenario(scenario: Scenario, options: Options, workdir: Path) -> ScenarioResult:
    """Run one scenario on a fresh stack under ``workdir / scenario.name``."""
    began = time.monotonic()
    stack = Stack(workdir / scenario.name)
    rng = Random(f"{options.seed}:{scenario.name}")
    print(f"\n== {scenario.name}: {scenario.title}", flush=True)
    ticker: asyncio.Task[None] | None = None
    ctx: ScenarioContext | None = None
    try:
        await stack.start()
        client = await stack.client()
        admin = stack.admin()
        ctx = ScenarioContext(
            name=scenario.name,
            options=options,
            stack=stack,
            client=client,
            admin=admin,
            recorder=SandboxRecorder(admin),
            rng=rng,
            factory=PlanFactory(rng, f"{scenario.name[:2]}{options.seed}", Timing()),
        )
        ctx.use_timing()
        # Every scenario's outcomes go to a subscriber that is down for its first seconds.
        await outcome_events.subscribe(client, admin, TASK_QUEUE, outcome_events_down_seconds(ctx))
        progress = Progress(ctx, options.sagas)
        ticker = asyncio.create_task(progress.run())
        await scenario.drive(ctx)
        await ctx.wait_operators()
        await ctx.recorder.clear_faults()
        await revive(ctx)

        def settling(running: int, waiting: int) -> None:
            progress.settling = f", settling: {running} open ({waiting} need attention)"

        if not await observe.wait_until_settled(client, options.settle_seconds, settling):
            ctx.notes.append(f"not settled within {options.settle_seconds:.0f} s")
        if not await outcome_events.wait_delivered(client, options.settle_seconds):
            ctx.notes.append("outcome deliveries still retrying at the end")
        ticker.cancel()
        await progress.print_line()
        calls = await ctx.recorder.finish()
        provider = await read_provider_state(stack.sandbox_url, stack.state_file, calls)
        runs = await observe.observe_all(client)
        violations, benign = invariants.check(
            runs, provider, ctx.accepted, allow_task_failure_causes=ctx.allowed_task_failures
        )
        if benign:
            ctx.notes.append(
                f"WorkflowTaskFailed (UnhandledCommand) where a signal or update raced the "
                f"task, which Temporal retried at once (not a violation): {len(benign)}: "
                + ", ".join(benign[:10])
                + (" ..." if len(benign) > 10 else "")
            )
        for expectation in ctx.expectations:
            violations += expectation(runs, provider)
        received = await asyncio.to_thread(admin.subscriber_received, outcome_events.ENDPOINT)
        violations += outcome_events.check(runs, received)
        ctx.counters.update(outcome_events.counters(received))
        violations = ctx.violations + violations
        return ScenarioResult(
            name=scenario.name,
            title=scenario.title,
            summary=scenario.summary,
            sagas=len(ctx.accepted),
            runs=len(runs),
            faults=ctx.recorder.fired,
            crashes=sum(o.component == "worker" for o in stack.outages),
            restarts=sum(o.component in ("server", "sandbox") for o in stack.outages),
            final_states=Counter(run.phase or run.execution_status for run in runs),
            recovery=recovery.measure(runs, stack.outages),
            violations=violations,
            wall_seconds=time.monotonic() - began,
            notes=ctx.notes + [f"{k}: {v}" for k, v in sorted(ctx.counters.items())],
            workdir=stack.workdir,
        )
    except Exception as error:
        return ScenarioResult(
            name=scenario.name,
            title=scenario.title,
            summary=scenario.summary,
            sagas=len(ctx.accepted) if ctx else 0,
            runs=0,
            faults=Counter(),
            crashes=0,
            restarts=0,
            final_states=Counter(),
            recovery=recovery.Recovery(()),
            violations=[],
            wall_seconds=time.monotonic() - began,
            notes=[],
            workdir=stack.workdir,
            error=f"{type(error).__name__}: {error}",
        )
    finally:
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        stack.stop()


def outcome_events_down_seconds(ctx: ScenarioContext) -> float:
    """How long the outcome subscriber answers 503 from the scenario's start."""
    return ctx.scaled(25, 6)


async def revive(ctx: ScenarioContext) -> None:
    """A process that died on its own is a finding (a violation); it is started again
    so that the sagas can still settle and be checked."""
    for process in ctx.stack.died():
        code = process.process.returncode if process.process else None
        ctx.violations.append(
            Violation(process.name, "process", f"{process.name} exited by itself (code {code})")
        )
        await asyncio.to_thread(process.start)
