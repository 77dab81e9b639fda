"""Steering a saga: operator requests applied between steps, waits they interrupt.

Every saga drives itself with one loop (:meth:`Steering.drive`): apply the next
queued operator request, else take the saga's next step — a durable wait
(:meth:`~Steering.wait_until`) or a poll (:meth:`~Steering.poll_interruptibly`),
both of which give way the moment a request arrives. Update handlers only queue
a request and wait for its outcome (:meth:`~Steering.request`); the loop owns
every provider call, so a revoke can never race a poll or a submit. Validators
refuse what a settled saga can no longer do (:meth:`~Steering.refuse_if_settled`).

Every saga has one Steering from its start to :meth:`~Steering.close`, so the
saga metrics are counted here, once, for all four sagas (:class:`SagaMetrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError
from temporalio.exceptions import TimeoutError as ActivityTimeoutError

with workflow.unsafe.imports_passed_through():
    from domain.common import OperatorRequestKind, SagaPhase

from workflows.ledger import SagaLedger, describe_failure
from workflows.operator_inbox import OperatorInbox, OperatorRequest
from workflows.saga_metrics import SagaMetrics

T = TypeVar("T")
RequestHandler = Callable[[Any], Awaitable[None]]


class Refused(Exception):
    """An operator request the saga cannot apply; the message is the reason."""


class Steering:
    """One saga's operator inbox and the loop that applies it (see the module docstring)."""

    def __init__(self, ledger: SagaLedger) -> None:
        self.ledger = ledger
        self.inbox = OperatorInbox()
        self.metrics = SagaMetrics(ledger)
        self.metrics.started()

    # -- the update handlers' side ---------------------------------------------

    async def request(self, kind: OperatorRequestKind, payload: Any = None) -> None:
        """Queue a request and wait until the loop applied it (or raise its refusal)."""
        await self.inbox.submit(kind, payload)

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
        """Final, or waiting for an operator's ``resolve``: no step left to take."""
        phase = self.ledger.phase
        return phase.is_final or phase == SagaPhase.NEEDS_ATTENTION

    async def drive(
        self, advance: Callable[[], Awaitable[None]], handlers: Mapping[str, RequestHandler]
    ) -> None:
        """Take ``advance`` steps until settled; queued requests go first."""
        while not self.settled:
            if self.inbox.has_pending():
                await self.apply_pending(handlers)
            else:
                await advance()

    async def apply_pending(
        self, handlers: Mapping[str, RequestHandler], *, otherwise: str | None = None
    ) -> None:
        """Apply the oldest queued request; its refusal goes back to its caller.

        A request with no handler here is refused with ``otherwise``.
        """
        request = self.inbox.take()
        try:
            handler = handlers.get(request.kind)
            if handler is None:
                raise Refused(otherwise or f"cannot {request.kind} now")
            await handler(request.payload)
            request.finish()
        except (ActivityError, Refused) as error:
            request.finish(describe_failure(error))
        finally:
            if not request.done:
                # Cancelled mid-request: release the waiting handler with the reason.
                request.finish("the saga was cancelled while applying this request")
            self.inbox.release()
            self.metrics.observe()

    async def wait_for_request(self) -> None:
        # A saga in NEEDS_ATTENTION waits for an operator here: counted on arrival.
        self.metrics.observe()
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

        ``WAITING``: the durable timer to ``due``, then ``POLLING`` (noting ``reached``)
        unless a request came first; any later phase: ``poll``.
        """
        if self.ledger.phase != SagaPhase.WAITING:
            await poll()
        elif await self.wait_until(due):
            self.ledger.enter(SagaPhase.POLLING, reached)

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
