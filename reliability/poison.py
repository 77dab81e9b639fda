"""Scenario 6: poison operator input — every update and signal, with odd values.

While a few hundred sagas of every kind wait for their dates (some order
cancellations as drafts waiting for ``confirm``), each receives a random batch of
operator requests sent straight to Temporal, past the edge's checks, as a client
with the wrong idea would send them: ``revoke`` with a 165-character reason or a
number, ``reschedule`` into the past, without an offset, to the year 9999, a day
past the farthest date allowed, as an integer; ``confirm`` with an argument;
``resolve`` with an unknown action or a 501-character note; an update that does not
exist; ``provider_notice`` signals with boundary-length subjects and details,
unknown providers and events, naive times, duplicates, non-objects; an unknown
signal. The same through ``starter.sagas`` (the edge) too. Then, for some sagas, a
valid request at the boundary (a 164-character reason, a reschedule, a confirm, a
workflow cancel).

Every request must be answered (applied or refused), and no workflow task may fail:
the histories are scanned for ``WorkflowTaskFailed``. The sagas then run to their
end and the usual invariants apply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import (
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError

from domain import search_attributes as sa
from domain.common import MAX_SCHEDULE_AHEAD, InvalidRequest, SagaKind
from reliability.invariants import Violation
from reliability.run import ScenarioContext, revoking
from reliability.workload import SagaPlan
from starter import sagas

#: An operator request answers within seconds; a stuck one is a finding.
ANSWER_SECONDS = 30.0
#: Few future-order cancellations: they finish at once, before any request reaches them.
MIX = {
    SagaKind.LINE_TERMINATION: 0.3,
    SagaKind.ORDER_CANCELLATION: 0.3,
    SagaKind.FUTURE_ORDER_CANCELLATION: 0.05,
    SagaKind.CUSTOMER_CHURN: 0.35,
}
CONCURRENCY = 16
#: Sagas still waiting for a date further ahead than this are revoked at the end.
FAR = timedelta(minutes=5)


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def refused_updates(plan: SagaPlan) -> list[tuple[str, tuple[Any, ...]]]:
    """``(update name, args)`` no edge would let through, and every saga must refuse."""
    now = datetime.now(UTC)
    return [
        ("revoke", ({"reason": "r" * 165},)),
        ("revoke", ({"reason": 42},)),
        ("revoke", ({"reason": ["a", "list"]},)),
        ("revoke", ({"because": "unknown field"},)),
        ("revoke", ("not an object",)),
        ("reschedule", ({"wishDate": "2020-01-01T00:00:00Z"},)),
        ("reschedule", ({"wishDate": "2030-01-01T00:00:00"},)),
        ("reschedule", ({"wishDate": "0001-01-01T00:00:00Z"},)),
        ("reschedule", ({"wishDate": "2026-13-45T99:00:00Z"},)),
        ("reschedule", ({"wishDate": 12345},)),
        ("reschedule", ({"wishDate": None},)),
        ("reschedule", ({},)),
        ("reschedule", ({"wishDate": (now - timedelta(seconds=1)).isoformat()},)),
        ("reschedule", ({"wishDate": "9999-12-31T23:59:59Z"},)),
        ("reschedule", ({"wishDate": (now + MAX_SCHEDULE_AHEAD + timedelta(days=1)).isoformat()},)),
        ("resolve", ({"action": "explode"},)),
        ("resolve", ({"action": "mark_handled", "note": "n" * 501},)),
        ("resolve", ({"action": "retry"},)),
        ("frobnicate", ({"x": 1},)),
    ]


def odd_but_valid_updates(plan: SagaPlan) -> list[tuple[str, tuple[Any, ...]]]:
    """Odd, yet within every rule: the saga may apply them (and then ends or moves)."""
    odd_text = "\u0000\u202e\u2028😀\ufffd" * 20
    updates: list[tuple[str, tuple[Any, ...]]] = [
        ("revoke", ({"reason": odd_text},)),
        ("revoke", ({"reason": None}, {"reason": "a second argument"})),
        ("confirm", ({"unexpected": "argument"},)),
    ]
    if plan.kind != SagaKind.FUTURE_ORDER_CANCELLATION:
        # The farthest date the rules allow, give or take a day.
        farthest = datetime.now(UTC) + MAX_SCHEDULE_AHEAD - timedelta(days=1)
        updates.append(("reschedule", ({"wishDate": farthest.isoformat()},)))
    return updates


def poison_signals(plan: SagaPlan) -> list[tuple[str, Any]]:
    notice = {"provider": "airalo", "event": "future_order.fired", "subject": "Q" * 25}
    signals: list[tuple[str, Any]] = [
        ("provider_notice", {**notice, "subject": "s" * 129}),
        ("provider_notice", {**notice, "subject": "s" * 128}),
        ("provider_notice", {**notice, "subject": ""}),
        ("provider_notice", {**notice, "detail": "d" * 501}),
        ("provider_notice", {**notice, "detail": "d" * 500}),
        ("provider_notice", {**notice, "provider": "nope"}),
        ("provider_notice", {**notice, "provider": "stn", "event": "line.exploded"}),
        ("provider_notice", {**notice, "event": "future_order.teleported"}),
        ("provider_notice", {**notice, "at": "2026-01-01T00:00:00"}),
        ("provider_notice", {**notice, "at": "not a time"}),
        ("provider_notice", notice),
        ("provider_notice", notice),
        ("provider_notice", notice),
        ("provider_notice", "not an object"),
        ("provider_notice", 7),
        ("explode", {"boom": True}),
    ]
    if plan.order_id:
        # Well-formed notices about the saga's own order: recorded, never acted on.
        for event in ("subscription-churned", "subscription-reactivated"):
            signals.append(
                (
                    "provider_notice",
                    {"provider": "rebilly", "event": event, "subject": plan.order_id},
                )
            )
    return signals


class PoisonOperatorInput:
    name = "poison-operator"
    title = "Poison operator input"
    summary = (
        "Every update (revoke, reschedule, confirm, resolve, an unknown one) and signal "
        "(provider_notice, an unknown one) with boundary-length and odd values, sent "
        "straight to Temporal and through starter.sagas to sagas waiting for their dates; "
        "then a valid boundary request to some (164-character reason, reschedule, confirm, "
        "workflow cancel)."
    )

    async def drive(self, ctx: ScenarioContext) -> None:
        ctx.use_timing(wish_min=40, wish_max=90, revoke_share=0, reschedule_share=0)
        plans = ctx.factory.draw(ctx.options.sagas, MIX)
        for plan in plans:
            if (
                plan.kind == SagaKind.ORDER_CANCELLATION
                and plan.wish_offset
                and ctx.rng.random() < 0.3
            ):
                plan.extra["draft"] = True
        await ctx.seed(plans)
        await ctx.start_plans(plans, window=ctx.scaled(10, 2))
        await asyncio.sleep(ctx.scaled(5, 2))  # most are past SUBMITTING
        gate = asyncio.Semaphore(CONCURRENCY)
        ids = {plan.index: wid for wid, plan in ctx.plans.items()}

        async def one(plan: SagaPlan) -> None:
            async with gate:
                await self.poison(ctx, plan, ids[plan.index])

        await asyncio.gather(*(one(plan) for plan in plans if plan.index in ids))
        await self.release_far(ctx)

    async def poison(self, ctx: ScenarioContext, plan: SagaPlan, workflow_id: str) -> None:
        handle: WorkflowHandle[Any, Any] = ctx.client.get_workflow_handle(workflow_id)
        requests: list[tuple[str, Callable[[], Awaitable[object]]]] = []
        for name, args in ctx.rng.sample(refused_updates(plan), 8):
            requests.append((f"update {name}", _update(handle, name, args)))
        for name, payload in ctx.rng.sample(poison_signals(plan), 6):
            requests.append((f"signal {name}", _signal(handle, name, payload)))
        requests += [
            ("edge revoke 165", lambda: sagas.revoke(ctx.client, workflow_id, "r" * 165)),
            (
                "edge reschedule past",
                lambda: sagas.reschedule(
                    ctx.client, workflow_id, datetime.now(UTC) - timedelta(days=1)
                ),
            ),
        ]
        ctx.rng.shuffle(requests)
        for label, send in requests:
            outcome = await self.send(ctx, workflow_id, label, send)
            if label.startswith("update") and outcome == "applied":
                ctx.violations.append(
                    Violation(workflow_id, "poison", f"{label}: applied, though it breaks a rule")
                )
        if ctx.rng.random() < 0.3:
            name, args = ctx.rng.choice(odd_but_valid_updates(plan))
            await self.send(ctx, workflow_id, f"odd update {name}", _update(handle, name, args))
            if plan.extra.get("draft"):  # a draft waits for its confirm for ever otherwise
                await self.finally_valid(ctx, plan, workflow_id)
        else:
            await self.finally_valid(ctx, plan, workflow_id)

    async def send(
        self,
        ctx: ScenarioContext,
        workflow_id: str,
        label: str,
        send: Callable[[], Awaitable[object]],
    ) -> str:
        """Send one request and wait for its answer; how it was answered."""
        try:
            await asyncio.wait_for(send(), ANSWER_SECONDS)
            outcome = "applied"
        except WorkflowUpdateFailedError:
            outcome = "refused"
        except (InvalidRequest, sagas.SagaClosed, sagas.SagaNotFound):
            outcome = "refused at the edge"
        except RPCError as error:
            outcome = f"rejected by Temporal ({error.status.name if error.status else '?'})"
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            outcome = "unanswered"
            ctx.violations.append(
                Violation(workflow_id, "poison", f"{label}: no answer in {ANSWER_SECONDS:.0f} s")
            )
        ctx.counters[f"{label}: {outcome}"] += 1
        return outcome

    async def finally_valid(self, ctx: ScenarioContext, plan: SagaPlan, workflow_id: str) -> None:
        """A valid request at the boundary for some sagas (drafts are confirmed or revoked)."""
        roll = ctx.rng.random()
        if plan.extra.get("draft"):
            if roll < 0.7:
                await ctx.operator_request(
                    "confirm", lambda: sagas.confirm(ctx.client, workflow_id)
                )
            else:
                await ctx.operator_request(
                    "revoke 164", lambda: sagas.revoke(ctx.client, workflow_id, "r" * 164)
                )
        elif roll < 0.2:
            await ctx.operator_request(
                "revoke 164", lambda: sagas.revoke(ctx.client, workflow_id, "ü" * 164)
            )
        elif roll < 0.3:
            new = datetime.now(UTC) + timedelta(seconds=ctx.rng.uniform(5, 30))
            await ctx.operator_request(
                "reschedule", lambda: sagas.reschedule(ctx.client, workflow_id, new)
            )
        elif roll < 0.38:
            await ctx.operator_request("cancel", lambda: sagas.cancel(ctx.client, workflow_id))

    async def release_far(self, ctx: ScenarioContext) -> None:
        """Sagas a valid poison moved to a far date are revoked: otherwise they wait on."""
        far = datetime.now(UTC) + FAR
        query = f"ExecutionStatus = 'Running' AND {sa.WISH_DATE.name} > '{far.isoformat()}'"
        async for execution in ctx.client.list_workflows(query):
            await ctx.operator_request(
                "revoke (moved far ahead)", revoking(ctx.client, execution.id, "clean-up")
            )


def _update(
    handle: WorkflowHandle[Any, Any], name: str, args: tuple[Any, ...]
) -> Callable[[], Awaitable[object]]:
    async def send() -> object:
        return await handle.execute_update(name, args=list(args))

    return send


def _signal(
    handle: WorkflowHandle[Any, Any], name: str, payload: Any
) -> Callable[[], Awaitable[object]]:
    async def send() -> object:
        await handle.signal(name, payload)
        return None

    return send
