"""Scenario 7: a bulk reschedule with the worker killed under it.

Line terminations wait for a date two days ahead; one bulk operation moves every one
of them to a date inside the run while the worker is SIGKILLed mid-operation (a batch
of updates in flight). Checked from sTN's call log, beside every other invariant:
each line is rescheduled exactly once — its first termination cancelled once, one
resubmission — and the operation's report says every saga applied, none failed.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from temporalio.client import WorkflowExecutionStatus

from domain.bulk import BulkAction, BulkProgress, BulkRequest, SagaOutcome, Selection
from domain.common import SagaKind, SagaPhase
from reliability.faults import crash_worker
from reliability.invariants import Violation
from reliability.observe import RunRecord
from reliability.provider_state import ProviderState
from reliability.run import Expectation, ScenarioContext
from reliability.workload import SagaPlan
from starter import bulk

TERMINATE = "/api/TerminateSubscription"
CANCEL = "/api/CancelTerminateSubscription"
TWO_DAYS = 2 * 24 * 3600.0


class BulkReschedule:
    name = "bulk-reschedule"
    title = "Bulk reschedule, worker killed"
    summary = (
        "Every line termination waits for a date two days ahead; one bulk operation "
        "reschedules them all to a date inside the run while the worker is SIGKILLed "
        "twice mid-operation; each line rescheduled exactly once (at sTN: one "
        "cancellation and one resubmission), the report applied for every saga."
    )

    async def drive(self, ctx: ScenarioContext) -> None:
        plans = [
            ctx.factory.plan(
                SagaKind.LINE_TERMINATION,
                phone=None,
                subscription_id=f"SUB-{ctx.tag}-bulk-{n}",
                stn_error=False,
                wish_offset=TWO_DAYS,
                revoke_at=None,
                reschedule_at=None,
            )
            for n in range(ctx.options.sagas)
        ]
        await ctx.seed(plans)
        await ctx.start_plans(plans, ctx.scaled(15, 3))
        selection = Selection(kind=SagaKind.LINE_TERMINATION, status=SagaPhase.WAITING)
        await _all_selected(ctx, selection, len(plans))
        new_date = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=ctx.scaled(120, 45))
        request = BulkRequest(action=BulkAction.RESCHEDULE, selection=selection, wish_date=new_date)
        started = await bulk.start_bulk(ctx.client, request, ctx.settings)
        print(f"  [{ctx.name}] bulk operation {started.operation_id} started", flush=True)
        for _ in range(int(ctx.scaled(2, 1))):
            await asyncio.sleep(ctx.rng.uniform(1.0, 3.0))
            await crash_worker(ctx, down=ctx.rng.uniform(0.5, 3.0), mid_activity=True)
        report = await _report(ctx, started.operation_id)
        ctx.notes.append(
            f"bulk reschedule of {report.selected} sagas: {report.state}, "
            + ", ".join(f"{n} {o.value}" for o, n in sorted(report.counts.items()))
        )
        ctx.expectations.append(_rescheduled_once(plans, report))


async def _all_selected(ctx: ScenarioContext, selection: Selection, count: int) -> None:
    query = selection.visibility_query(ctx.settings.task_queue)
    deadline = time.monotonic() + 120.0
    while await bulk.count_selection(ctx.client, query) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"not every line was waiting within 120 s ({query})")
        await asyncio.sleep(0.5)  # visibility catching up: polled, with a deadline


async def _report(ctx: ScenarioContext, operation_id: str) -> BulkProgress:
    """The operation's final report, waited for across the worker's restarts."""
    deadline = time.monotonic() + 600.0
    while True:
        handle = await bulk.operation_handle(ctx.client, ctx.settings, operation_id)
        described = await handle.describe()
        if described.status != WorkflowExecutionStatus.RUNNING:
            return await handle.result()
        if time.monotonic() > deadline:
            raise RuntimeError(f"bulk operation {operation_id} did not end within 600 s")
        await asyncio.sleep(1.0)


def _rescheduled_once(plans: list[SagaPlan], report: BulkProgress) -> Expectation:
    lines = {plan.subscription_id for plan in plans if plan.subscription_id}

    def check(runs: list[RunRecord], provider: ProviderState) -> list[Violation]:
        violations = []
        if report.state != "done" or report.counts != {SagaOutcome.APPLIED: len(plans)}:
            counts = {o.value: n for o, n in report.counts.items()}
            violations.append(
                Violation("bulk", "bulk", f"want {len(plans)} applied, got {report.state} {counts}")
            )
        accepted = [
            call
            for call in provider.calls_to("stn", "POST", TERMINATE)
            if call.status < 300 and (call.body or {}).get("subscriptionId") in lines
        ]
        submissions: dict[str, int] = {}
        for call in accepted:
            line = call.body["subscriptionId"]
            submissions[line] = submissions.get(line, 0) + 1
        for line in sorted(lines):
            if submissions.get(line) != 2:
                violations.append(
                    Violation(
                        line, "bulk", f"{submissions.get(line, 0)} terminations at sTN, want 2"
                    )
                )
        cancels = [c for c in provider.calls_to("stn", "POST", CANCEL) if c.status < 300]
        cancelled = {(c.body or {}).get("activationId") for c in cancels}
        if len(cancels) != len(plans) or len(cancelled) != len(plans):
            violations.append(
                Violation(
                    "bulk",
                    "bulk",
                    f"{len(cancels)} cancellations of {len(cancelled)} terminations at sTN, "
                    f"want one each of {len(plans)}",
                )
            )
        return violations

    return check
