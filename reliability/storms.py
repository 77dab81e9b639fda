"""Scenario 4: duplicate storms — the same business request many times, at once.

Every business request is sent in three waves, each a handful of concurrent copies
through a random mix of every entry point (``starter.sagas`` as the CLI and API call
it, ``POST /v1/<kind>`` with and without an ``Idempotency-Key``, ``POST /v1/events``
with the same and with different CloudEvent ids, ``cancelctl`` in the batch runner,
``cancelctl`` as a real process):

1. when it is first made: exactly one copy starts the saga, every other one attaches
   to it or is recognised as a redelivery;
2. for a third of the dated requests, a burst half a second before the wish date,
   while the saga is about to close;
3. after the saga closed: the same request again (refused as invalid if its wish date
   has passed: nothing starts) and the same business key with a fresh date. After a
   ``COMPLETED`` saga every copy is answered with that saga and nothing starts;
   after any other end one new run may start.

Then the usual invariants, plus: one run per business key whose first run completed.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio.client import WorkflowFailureError
from temporalio.service import RPCError

from domain.common import InvalidRequest, SagaPhase
from reliability.entrypoints import Answer, Api, CliBatch, api_body, cancelctl, cli_argv
from reliability.invariants import Violation
from reliability.observe import RunRecord
from reliability.provider_state import ProviderState
from reliability.run import ScenarioContext
from reliability.workload import SagaPlan, workflow_id_of
from starter import sagas
from starter.kinds import KINDS

ENTRIES = ("direct", "api", "api-key", "event", "event-new-id", "cli-batch", "cancelctl")
#: Relative weights: a real cancelctl process costs half a second of CPU.
WEIGHTS = (3, 3, 2, 2, 1, 2, 0.3)
WAVE = 5


class DuplicateStorms:
    name = "duplicate-storms"
    title = "Duplicate storms"
    summary = (
        "Each business request sent in three waves of ~5 concurrent copies through every "
        "entry point (starter.sagas, API start with and without Idempotency-Key, CloudEvents "
        "with repeated and new ids, cancelctl batch and process): when made, half a second "
        "before its wish date, and after its saga closed."
    )

    async def drive(self, ctx: ScenarioContext) -> None:
        ctx.use_timing(revoke_share=0, reschedule_share=0, wish_max=40)
        plans = ctx.factory.draw(ctx.options.sagas)
        await ctx.seed(plans)
        storm = Storm(ctx, Api(ctx.stack), [await CliBatch.start(ctx.stack) for _ in range(2)])
        try:
            window = ctx.scaled(20, 2)
            offsets = sorted(ctx.rng.uniform(0, window) for _ in plans)
            await asyncio.gather(
                *(storm.run(plan, offset) for plan, offset in zip(plans, offsets, strict=True))
            )
        finally:
            await storm.close()
        ctx.expectations.append(storm.one_run_after_completion)
        for label, count in sorted(storm.tally.items()):
            ctx.counters[f"requests {label}"] = count


class Storm:
    def __init__(self, ctx: ScenarioContext, api: Api, batches: list[CliBatch]) -> None:
        self.ctx = ctx
        self.api = api
        self.batches = batches
        self.tally: Counter[str] = Counter()
        self.keys: dict[str, SagaPlan] = {}

    async def close(self) -> None:
        await self.api.close()
        for batch in self.batches:
            await batch.close()

    def fail(self, key: str, why: str) -> None:
        self.ctx.violations.append(Violation(key, "duplicates", why))

    async def run(self, plan: SagaPlan, offset: float) -> None:
        await asyncio.sleep(offset)
        request = plan.request(datetime.now(UTC))
        workflow_id = workflow_id_of(request, self.ctx.settings)
        self.keys[workflow_id] = plan
        first = await self.wave(plan, request, "made")
        started = [
            a for a in first if a.ok and not (a.attached or a.duplicate or a.already_completed)
        ]
        if any(a.ok for a in first):
            self.ctx.accepted.add(workflow_id)
        if len(started) != 1:
            self.fail(
                workflow_id,
                f"{len(started)} of {len(first)} concurrent copies started a saga"
                f" ({', '.join(a.entry for a in started) or 'none'})",
            )
        wish = getattr(request, "wish_date", None) or getattr(request, "churn_time", None)
        if wish is not None and self.ctx.rng.random() < 0.33:
            await asyncio.sleep(max(0.0, (wish - datetime.now(UTC)).total_seconds() - 0.5))
            await self.wave(plan, request, "closing")
        phase = await self.closed(workflow_id)
        fresh = plan.request(datetime.now(UTC) + timedelta(seconds=self.ctx.scaled(30, 2)))
        after = await self.wave(plan, request, "after close", copies=3)
        after += await self.wave(plan, fresh, "after close, new date", copies=2)
        self.judge_after(workflow_id, phase, after)

    async def wave(
        self, plan: SagaPlan, request: BaseModel, when: str, copies: int = WAVE
    ) -> list[Answer]:
        entries = self.ctx.rng.choices(ENTRIES, WEIGHTS, k=copies)
        answers = await asyncio.gather(
            *(self.send(entry, plan, request, n) for n, entry in enumerate(entries))
        )
        expected = workflow_id_of(request, self.ctx.settings)
        for answer in answers:
            self.tally[f"{when}: {answer.entry} -> {self._verdict(answer)}"] += 1
            if answer.traceback or answer.code >= 500 or answer.code == 1:
                self.fail(expected, f"{answer.entry} answered {answer.code}: {answer.text[:300]}")
            elif answer.ok and answer.workflow_id != expected:
                self.fail(expected, f"{answer.entry} named {answer.workflow_id}, want {expected}")
        return list(answers)

    @staticmethod
    def _verdict(answer: Answer) -> str:
        if not answer.ok:
            return f"refused {answer.code}"
        if answer.already_completed:
            return "already completed"
        if answer.duplicate:
            return "redelivery"
        return "attached" if answer.attached else "started"

    async def send(self, entry: str, plan: SagaPlan, request: BaseModel, n: int) -> Answer:
        kind = KINDS.for_request(request).kind
        body = api_body(request)
        if entry == "direct":
            return await self._direct(kind, request)
        if entry == "api":
            return await self.api.start(kind, body)
        if entry == "api-key":
            return await self.api.start(kind, body, idempotency_key=f"storm-{plan.index}")
        if entry == "event":
            return await self.api.event(kind, "reliability/storm", f"evt-{plan.index}", body)
        if entry == "event-new-id":
            event_id = f"evt-{plan.index}-{n}-{self.ctx.rng.randrange(10**9)}"
            return await self.api.event(kind, "reliability/storm", event_id, body)
        if entry == "cli-batch":
            return await self.batches[plan.index % len(self.batches)].run(cli_argv(request))
        return await cancelctl(self.ctx.stack, cli_argv(request))

    async def _direct(self, kind: str, request: BaseModel) -> Answer:
        try:
            started = await sagas.start(self.ctx.client, kind, request, self.ctx.settings)
        except InvalidRequest as refused:
            return Answer("starter.sagas", 2, None, text=str(refused))
        except RPCError as error:
            return Answer("starter.sagas", 1, None, text=str(error))
        return Answer(
            "starter.sagas",
            0,
            started.workflow_id,
            started.run_id,
            attached=started.already_running,
            already_completed=started.already_completed,
            duplicate=started.duplicate_delivery,
        )

    async def closed(self, workflow_id: str) -> str | None:
        """Wait for the saga's run to close; its final phase."""
        handle = self.ctx.client.get_workflow_handle(workflow_id)
        try:
            result: dict[str, Any] = await handle.result()
            return str(result.get("phase"))
        except (WorkflowFailureError, RPCError):
            return None

    def judge_after(self, workflow_id: str, phase: str | None, answers: list[Answer]) -> None:
        accepted = [a for a in answers if a.ok]
        if phase == SagaPhase.COMPLETED:
            for answer in accepted:
                if not (answer.already_completed or answer.duplicate):
                    self.fail(
                        workflow_id,
                        f"after COMPLETED, {answer.entry} answered {self._verdict(answer)} "
                        "(want: already completed)",
                    )
        else:
            started = [a for a in accepted if self._verdict(a) == "started"]
            if len(started) > 2:  # one per after-close wave at most
                self.fail(workflow_id, f"after {phase}, {len(started)} copies started new runs")

    def one_run_after_completion(
        self, runs: list[RunRecord], provider: ProviderState
    ) -> list[Violation]:
        """A business key whose first run COMPLETED never gets a second run."""
        by_key: dict[str, list[RunRecord]] = {}
        for run in sorted(runs, key=lambda r: r.started):
            by_key.setdefault(run.workflow_id, []).append(run)
        violations = []
        for workflow_id, key_runs in by_key.items():
            if key_runs[0].phase == SagaPhase.COMPLETED and len(key_runs) > 1:
                violations.append(
                    Violation(
                        workflow_id,
                        "duplicates",
                        f"{len(key_runs)} runs, the first of which COMPLETED: "
                        + ", ".join(f"{r.run_id[:8]} {r.phase}" for r in key_runs),
                    )
                )
        return violations
