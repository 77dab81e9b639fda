"""Steering a saga: operator requests applied between steps, waits they interrupt.

Every saga drives itself with one loop (:meth:`Steering.drive`): apply the next
queued operator request, else take the saga's next step — a durable wait
(:meth:`~Steering.wait_until`) or a poll (:meth:`~Steering.poll_interruptibly`),
both of which give way the moment a request arrives. Update handlers only queue
a request and wait for its outcome (:meth:`~Steering.request`); the loop owns
every provider call, so a revoke can never race a poll or a submit. Validators
refuse what a settled saga can no longer do (:meth:`~Steering.refuse_if_settled`).

The loop's own state is explicit (:class:`Stage`): whether it waits for the due
date or follows the provider is changed only by :meth:`~Steering.scheduled` and the
timer, never read back from the saga's phase (a refused request restores the phase
it showed, which does not move the loop); it ends, or waits for an operator, when
the ledger enters a final phase or ``NEEDS_ATTENTION``.

Every saga has one Steering from its start to :meth:`~Steering.close`, so the
saga metrics are counted here, once, for every saga (:class:`SagaMetrics`), and its
outcome events are emitted from here (:class:`OutcomeEvents`): the saga waits for
their publishing only before its run closes (:meth:`~Steering.settle_outcomes`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception
from temporalio.exceptions import TimeoutError as ActivityTimeoutError

with workflow.unsafe.imports_passed_through():
    from domain.churn import ResolveRequest
    from domain.common import OperatorRequestKind, RescheduleRequest, RevokeRequest, SagaPhase
    from domain.lanes import MEMO_OBSERVATION_SPREAD, observation_delay

from workflows import patches
from workflows.ledger import LedgerWatcher, SagaLedger, describe_failure
from workflows.operator_inbox import (
    ConfirmRequest,
    OperatorInbox,
    OperatorPayload,
    OperatorRequest,
)
from workflows.outcome_events import OutcomeEvents
from workflows.provider_calls import urgent
from workflows.saga_metrics import SagaMetrics

T = TypeVar("T")


class Refused(Exception):
    """An operator request the saga cannot apply; the message is the reason."""


class Stage(Enum):
    """Where the steering loop is (see the module docstring)."""

    AWAITING_DUE = "awaiting the due date"
    FOLLOWING = "following the provider"
    NEEDS_OPERATOR = "waiting for an operator"
    ENDED = "ended"


@dataclass(frozen=True)
class RequestHandlers:
    """What a saga does with each operator request it applies; ``None``: refused."""

    revoke: Callable[[RevokeRequest], Awaitable[None]] | None = None
    reschedule: Callable[[RescheduleRequest], Awaitable[None]] | None = None
    confirm: Callable[[ConfirmRequest], Awaitable[None]] | None = None
    resolve: Callable[[ResolveRequest], Awaitable[None]] | None = None

    async def apply(self, payload: OperatorPayload, otherwise: str) -> None:
        """Hand ``payload`` to its handler; :class:`Refused` with ``otherwise`` if none."""
        match payload:
            case RevokeRequest() if self.revoke is not None:
                await self.revoke(payload)
            case RescheduleRequest() if self.reschedule is not None:
                await self.reschedule(payload)
            case ConfirmRequest() if self.confirm is not None:
                await self.confirm(payload)
            case ResolveRequest() if self.resolve is not None:
                await self.resolve(payload)
            case _:
                raise Refused(otherwise)


class Steering(LedgerWatcher):
    """One saga's operator inbox and the loop that applies it (see the module docstring)."""

    def __init__(self, ledger: SagaLedger, status: Callable[[], Any] | None = None) -> None:
        """``status``: the saga's ``status`` query, the ``data`` of its outcome events."""
        self.ledger = ledger
        self.inbox = OperatorInbox()
        self.stage = Stage.AWAITING_DUE
        ledger.watch(self)
        self.metrics = SagaMetrics(ledger)
        self.metrics.started()
        self.outcomes = OutcomeEvents(ledger, status)

    def phase_changed(self, previous: SagaPhase, phase: SagaPhase) -> None:
        if phase.is_final:
            self.stage = Stage.ENDED
        elif phase == SagaPhase.NEEDS_ATTENTION:
            self.stage = Stage.NEEDS_OPERATOR

    def scheduled(self, detail: str, *, effective: datetime | None = None) -> None:
        """Wait for the due date (``WAITING``); ``effective``: the date the provider
        holds the saga's effect for (``saga.scheduled``, or ``saga.rescheduled`` when
        it moved), ``None`` when it holds nothing for a date yet (a draft)."""
        self.stage = Stage.AWAITING_DUE
        self.ledger.enter(SagaPhase.WAITING, detail)
        if effective is not None:
            self.outcomes.scheduled(effective)

    async def run(
        self,
        steps: Callable[[], Awaitable[None]],
        *,
        compensate: Callable[[str], Awaitable[None]],
        cancelled_calls_compensate: Callable[[], bool] = lambda: False,
    ) -> None:
        """A single-provider saga's life: ``steps`` until settled, then close.

        A provider call that finally failed ends the saga ``FAILED`` with the
        provider's words. A workflow cancellation runs ``compensate`` shielded (it
        must finish although the run is being cancelled), then the run ends
        cancelled. ``cancelled_calls_compensate``: whether a cancelled *activity*
        counts as that cancellation, or (as in runs recorded before LineTermination's
        shielded submit) as a failed call. Returns once every handler has finished.
        """
        try:
            await steps()
        except BaseException as error:
            cancelled = is_cancelled_exception(error) and (
                cancelled_calls_compensate() or not isinstance(error, ActivityError)
            )
            if cancelled:
                with urgent():  # a compensation's calls go before routine work in their lanes
                    undoing = asyncio.ensure_future(compensate("workflow cancelled"))
                await asyncio.shield(undoing)
                raise
            if not isinstance(error, ActivityError):
                raise
            self.ledger.fail(SagaPhase.FAILED, describe_failure(error))
        finally:
            self.close()
            await self.settle_outcomes()
        await workflow.wait_condition(workflow.all_handlers_finished)

    # -- the update handlers' side ---------------------------------------------

    async def request(self, payload: OperatorPayload) -> None:
        """Queue a request and wait until the loop applied it (or raise its refusal)."""
        await self.inbox.submit(payload)

    def refuse_if_settled(
        self, kind: OperatorRequestKind, *, too_late: str | None = None, after_end: str = ""
    ) -> None:
        """A validator's common rules; ``too_late``: the provider already acted."""
        phase = self.ledger.phase
        if phase.is_final:
            raise ValueError(f"cannot {kind}: the saga is already {phase.value}{after_end}")
        if phase == SagaPhase.NEEDS_ATTENTION:
            raise ValueError(f"cannot {kind}: the saga is {phase.value}; only resolve is possible")
        if too_late is not None:
            raise ValueError(f"cannot {kind}: {too_late}")
        if self.inbox.busy:
            raise ValueError(f"cannot {kind}: another request is being applied")

    # -- the saga loop's side ----------------------------------------------------

    @property
    def settled(self) -> bool:
        """Ended, or waiting for an operator's ``resolve``: no step left to take."""
        return self.stage in (Stage.ENDED, Stage.NEEDS_OPERATOR)

    async def drive(
        self, advance: Callable[[], Awaitable[None]], handlers: RequestHandlers
    ) -> None:
        """Take ``advance`` steps until settled; queued requests go first."""
        while not self.settled:
            if self.inbox.has_pending():
                await self.apply_pending(handlers)
            else:
                await advance()

    async def apply_pending(
        self, handlers: RequestHandlers, *, otherwise: str | None = None
    ) -> None:
        """Apply the oldest queued request; its refusal goes back to its caller.

        A request with no handler here is refused with ``otherwise``.
        """
        request = self.inbox.take()
        try:
            # An operator waits for the answer: its calls go before routine work.
            with urgent():
                await handlers.apply(request.payload, otherwise or f"cannot {request.kind} now")
            request.finish()
        except (ActivityError, Refused) as error:
            request.finish(describe_failure(error))
        finally:
            if not request.done:
                # Cancelled mid-request: release the waiting handler with the reason.
                request.finish("the saga was cancelled while applying this request")
            self.inbox.release()

    async def wait_for_request(self) -> None:
        await workflow.wait_condition(self.inbox.has_pending)

    async def when_requested(self, react: Callable[[OperatorRequest], None]) -> None:
        """Call ``react`` with the first queued request; run as a task beside a long step.

        For a step that a request must not cancel but ask to wind down (it stops
        calling and settles what it started), so the loop can apply the request after.
        """
        await self.wait_for_request()
        react(self.inbox.peek())

    async def wait_until(self, due: datetime | None) -> bool:
        """Durable timer to ``due`` (``None``: already due); ``False`` if a request came first."""
        if due is not None:
            remaining = due - workflow.now()
            if remaining > timedelta(0):
                try:
                    await workflow.wait_condition(self.inbox.has_pending, timeout=remaining)
                    return False
                except TimeoutError:
                    pass
        return True

    async def wait_then_poll(
        self, poll: Callable[[], Awaitable[None]], *, due: datetime | None, reached: str
    ) -> None:
        """One step of a saga that waits for its due date, then polls its provider.

        Awaiting the due date: the durable timer to ``due`` and the saga's place in its
        wave (:meth:`observation_delay`), then following the provider (``POLLING``,
        noting ``reached``) unless a request came first; following: ``poll``.
        """
        if self.stage is not Stage.AWAITING_DUE:
            await poll()
            return
        delay = self.observation_delay(due)
        if await self.wait_until(due + delay if due is not None else None):
            self.stage = Stage.FOLLOWING
            if delay > timedelta(0):
                reached += f" (looked at {delay} after it: this saga's place in the wave)"
            self.ledger.enter(SagaPhase.POLLING, reached)

    def observation_delay(self, due: datetime | None) -> timedelta:
        """How long after ``due`` the saga first looks at its provider.

        Sagas due at the same moment do not all poll in the same second: each takes its
        place (a hash of its workflow id) in the window its start fixed in the memo for
        its slowest lane (``domain/lanes.py``). Only a saga that waited for ``due``
        (due after the run started) and runs with lanes (patch ``provider-lanes``);
        the provider already holds the effect for ``due``, only the observation moves.
        """
        info = workflow.info()
        if due is None or due <= info.start_time or not patches.patched(patches.PROVIDER_LANES):
            return timedelta(0)
        spreads = workflow.memo_value(
            MEMO_OBSERVATION_SPREAD, default={}, type_hint=dict[str, float]
        )
        seconds = max((spreads.get(p, 0.0) for p in self.ledger.providers), default=0.0)
        return observation_delay(info.workflow_id, timedelta(seconds=seconds))

    async def poll_interruptibly(
        self, poll: Awaitable[T], *, still_pending: str | None = None
    ) -> T | None:
        """Await a poll; ``None`` if a request stopped it (the loop applies it next).

        With ``still_pending``, a poll round that ran out of time is recorded with
        that note and also gives ``None``: the loop polls again.
        """
        polling = asyncio.ensure_future(poll)
        interrupt = asyncio.ensure_future(self.wait_for_request())
        await workflow.wait([polling, interrupt], return_when=asyncio.FIRST_COMPLETED)
        if not polling.done():
            polling.cancel()
            with contextlib.suppress(ActivityError, asyncio.CancelledError):
                await polling
            return None
        interrupt.cancel()
        try:
            return polling.result()
        except ActivityError as error:
            if still_pending is None or not isinstance(error.cause, ActivityTimeoutError):
                raise
            self.ledger.record("still_pending", still_pending)
            return None

    def close(self) -> None:
        """The saga ended: refuse every request still queued; count how it ended."""
        self.inbox.refuse_all(f"the saga ended {self.ledger.phase.value}")
        self.metrics.ended()

    async def settle_outcomes(self) -> None:
        """Before the run closes (also when it was cancelled): every outcome event
        handed over, no jeopardy timer left."""
        await self.outcomes.settle()
