"""Scenario 5: hostile input — a property-based run over the edge models and the CLI.

Hypothesis draws requests of every kind: well-formed ones with awkward but valid
values (Unicode that NFKC folds, padding, full-width digits, every phone format,
wish dates in odd offsets, boundary lengths), the same with one field broken, and
schema-shaped bodies (``reliability.schema_bodies``).
Each input goes to the HTTP API and, when ``cancelctl`` can express it, to
``cancelctl`` too (the batch runner; every tenth also as a real process). The
property, for every input and every entry point:

* it starts exactly the saga it describes — the workflow id and the run's input are
  the ones the domain's own parser makes of it — or it is refused with exit 2 / 422
  (every problem listed) and starts nothing;
* no traceback and no 5xx ever reaches the caller;
* the API and ``cancelctl`` agree (both accept the same saga, or both refuse).

Failures are collected, not raised, so one run reports every input that broke it.
The accepted sagas then run to their end like any other (long-dated ones, drafts and
renewals a month ahead are revoked by the operator first), and the usual invariants
apply; a run nobody accepted is a violation ("starts nothing").
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.configuration import set_hypothesis_home_dir
from pydantic import BaseModel

from domain.common import SagaKind
from reliability.entrypoints import Answer, Api, CliBatch, cancelctl
from reliability.hostile_inputs import Filler, Verdict, cli_args, oracle, payloads
from reliability.invariants import Violation
from reliability.observe import RunRecord
from reliability.provider_state import ProviderState
from reliability.run import ScenarioContext, revoking
from reliability.workload import SagaPlan, workflow_id_of

#: Accepted sagas dated further ahead than this are revoked before the run settles.
FAR_SECONDS = 150.0
CLI_PROCESS_SHARE = 0.1


# -- the scenario ---------------------------------------------------------------------


@dataclass
class Sent:
    kind: SagaKind
    body: Any
    verdict: Verdict
    expected_id: str | None
    answers: list[Answer] = field(default_factory=list)


class HostileInput:
    name = "hostile-input"
    title = "Hostile input"
    summary = (
        "Hypothesis-generated requests of every kind (awkward but valid values, one field "
        "broken, the API fuzz's bodies) sent to the HTTP API and to cancelctl (batch runner; "
        "every tenth a real process); each must start exactly the saga it describes or be "
        "refused with exit 2 / 422, with no traceback or 5xx, and both entry points agree."
    )

    async def drive(self, ctx: ScenarioContext) -> None:
        # Hypothesis keeps nothing (database=None), but would create its directory here.
        set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "co-reliability-hypothesis")
        pool = await self._seed_pool(ctx, count=ctx.options.sagas * 2)
        api, batch = Api(ctx.stack), await CliBatch.start(ctx.stack)
        filler = Filler(pool)
        sent: list[Sent] = []
        loop = asyncio.get_running_loop()
        try:
            for round_ in range(4):
                if sum(s.expected_id is not None for s in sent) >= ctx.options.sagas:
                    break
                examples = int(ctx.options.sagas * 1.6) if round_ == 0 else ctx.options.sagas
                await asyncio.to_thread(
                    self._hypothesis, ctx, loop, api, batch, filler, sent, examples, round_
                )
        finally:
            await api.close()
            await batch.close()
        await self._settle_inputs(ctx, sent)

    async def _seed_pool(self, ctx: ScenarioContext, count: int) -> list[str]:
        plan = SagaPlan(index=0, kind=SagaKind.FUTURE_ORDER_CANCELLATION, customer_id="pool")
        plan.esim_seeds = [ctx.factory.esim(plan, n) for n in range(count)]
        await ctx.seed([plan])
        return [esim.request_id for esim in plan.esim_seeds]

    def _hypothesis(
        self,
        ctx: ScenarioContext,
        loop: asyncio.AbstractEventLoop,
        api: Api,
        batch: CliBatch,
        filler: Filler,
        sent: list[Sent],
        examples: int,
        round_: int,
    ) -> None:
        """Runs in a thread: Hypothesis drives, each example is sent on the event loop."""

        @seed(ctx.options.seed * 100 + round_)
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(payloads())
        def prop(example: tuple[SagaKind, Any]) -> None:
            kind, body = example
            future = asyncio.run_coroutine_threadsafe(
                self._send(ctx, api, batch, filler, kind, body), loop
            )
            sent.append(future.result())

        prop()

    async def _send(
        self,
        ctx: ScenarioContext,
        api: Api,
        batch: CliBatch,
        filler: Filler,
        kind: SagaKind,
        drawn: Any,
    ) -> Sent:
        now = datetime.now(UTC)
        body = filler.fill(drawn, now)
        verdict = oracle(kind, body, now)
        expected = workflow_id_of(verdict.request, ctx.settings) if verdict.request else None
        item = Sent(kind, body, verdict, expected)
        ctx.counters[f"inputs {kind.value}"] += 1
        if verdict.crashed:
            self._fail(ctx, item, f"the domain's parser crashed: {verdict.crashed}")
        item.answers.append(await api.start(kind, body))
        argv = cli_args(kind, body)
        if argv is not None:
            if ctx.rng.random() < CLI_PROCESS_SHARE and _fits_a_process(argv):
                item.answers.append(await cancelctl(ctx.stack, argv))
            else:
                item.answers.append(await batch.run(argv))
        self._judge(ctx, item)
        return item

    def _fail(self, ctx: ScenarioContext, item: Sent, why: str) -> None:
        body = json.dumps(item.body, ensure_ascii=True, default=str)[:400]
        ctx.violations.append(
            Violation(item.expected_id or item.kind.value, "hostile", f"{why}; input {body}")
        )

    def _judge(self, ctx: ScenarioContext, item: Sent) -> None:
        for answer in item.answers:
            ctx.counters[f"answers {answer.entry} {answer.code}"] += 1
            if (
                answer.traceback
                or answer.code >= 500
                or answer.code not in (0, 2, 200, 202, 422, 409, 413)
            ):
                self._fail(ctx, item, f"{answer.entry} answered {answer.code}: {answer.text[:400]}")
                continue
            if item.expected_id is not None:
                if not answer.ok:
                    self._fail(
                        ctx, item, f"{answer.entry} refused a valid request: {answer.text[:300]}"
                    )
                elif answer.workflow_id != item.expected_id:
                    self._fail(
                        ctx,
                        item,
                        f"{answer.entry} started {answer.workflow_id}, "
                        f"the request describes {item.expected_id}",
                    )
                else:
                    ctx.accepted.add(item.expected_id)
            elif answer.ok:
                self._fail(
                    ctx,
                    item,
                    f"{answer.entry} accepted what the rules refuse "
                    f"({item.verdict.problems[:200]}): started {answer.workflow_id}",
                )
                if answer.workflow_id:
                    ctx.accepted.add(answer.workflow_id)
            elif (
                answer.code in (2, 422)
                and "invalid" not in answer.text
                and "usage" not in answer.text
                and "detail" not in answer.text
            ):
                self._fail(
                    ctx, item, f"{answer.entry} refused without saying why: {answer.text[:200]}"
                )
        oks = {a.ok for a in item.answers if a.code in (0, 2, 200, 202, 422)}
        if len(oks) > 1:
            self._fail(
                ctx,
                item,
                "the API and cancelctl disagree: "
                + "; ".join(f"{a.entry} {a.code}" for a in item.answers),
            )

    async def _settle_inputs(self, ctx: ScenarioContext, sent: list[Sent]) -> None:
        """Operator clean-up: revoke accepted sagas that would wait beyond the run, then
        check every accepted input against the run it started."""
        far = datetime.now(UTC) + timedelta(seconds=FAR_SECONDS)
        for item in sent:
            request = item.verdict.request
            if request is None or item.expected_id is None:
                continue
            if _waits_beyond(request, far):
                await ctx.operator_request(
                    "revoke (waits beyond the run)",
                    revoking(ctx.client, item.expected_id, "clean-up"),
                )
        # Inputs naming the same business key attach to one saga: any of them may be it.
        inputs: dict[str, list[dict[str, Any]]] = {}
        for item in sent:
            if item.expected_id and item.verdict.request is not None:
                dump = item.verdict.request.model_dump(mode="json", by_alias=True)
                inputs.setdefault(item.expected_id, []).append(dump)
        ctx.expectations.append(_inputs_match(inputs))
        ctx.counters["inputs accepted (distinct sagas)"] = len(inputs)
        ctx.counters["inputs refused"] = sum(item.expected_id is None for item in sent)


def _fits_a_process(argv: list[str]) -> bool:
    """A real process's arguments can carry neither NUL nor lone surrogates."""
    try:
        return not any("\x00" in arg for arg in argv) and all(arg.encode() for arg in argv)
    except UnicodeEncodeError:
        return False


def _waits_beyond(request: BaseModel, far: datetime) -> bool:
    if (
        getattr(request, "draft", False)
        or getattr(request, "churn_time_policy", None) == "at-next-renewal"
    ):
        return True
    moment = getattr(request, "wish_date", None) or getattr(request, "churn_time", None)
    return moment is not None and moment > far


def _inputs_match(
    inputs: dict[str, list[dict[str, Any]]],
) -> Callable[[list[RunRecord], ProviderState], list[Violation]]:
    """Every run of an accepted input holds exactly the request the rules made of it."""

    def check(runs: list[RunRecord], provider: ProviderState) -> list[Violation]:
        violations = []
        for run in runs:
            want = inputs.get(run.workflow_id)
            if want is not None and run.start_input not in want:
                violations.append(
                    Violation(
                        run.workflow_id,
                        "hostile",
                        f"run input {run.start_input!r:.300} differs from the request "
                        f"{want!r:.300}",
                    )
                )
        return violations

    return check
