"""Provider parts composed around a pivot: prepared for one date, finished or undone together.

Every part (``workflows.parts``) is prepared for the date D, in the order given
(most reversible first), then a durable timer waits for D. The pivot is an sTN line
termination (:class:`~workflows.stn_line.StnLine`), the one effect that cannot be
undone once executed: DONE → every part is finished (forward recovery,
``COMPLETED``); ERROR → every part is undone (``COMPENSATED``), the line first. A
compensation or post-pivot step that keeps failing moves the saga to
``NEEDS_ATTENTION`` with ``pendingActions`` until an operator's ``resolve``.

:class:`PivotComposition` is the saga logic; a workflow class (the customer churn,
``workflows.customer_churn``) builds its parts from its request, calls
:meth:`~PivotComposition._compose` and defines its ``run`` and ``status``. The rules
and the order of steps are in ``docs/sagas.md`` ("CustomerChurn").
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Literal, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from domain.churn import PendingAction, ResolveAction, ResolveRequest
    from domain.common import (
        OperatorRequestKind,
        ProviderNotice,
        RescheduleRequest,
        RevokeRequest,
        SagaPhase,
    )

from workflows import patches
from workflows.inflight import InflightStep
from workflows.ledger import SagaLedger, describe_failure
from workflows.operator_updates import Reschedulable
from workflows.parts import ProviderPart, StepFailed
from workflows.provider_calls import urgent
from workflows.provider_notices import NoticeBoard, ReceivesNotices
from workflows.steering import Refused, RequestHandlers, Steering
from workflows.stn_line import StnLine

REVOKE, RESCHEDULE = OperatorRequestKind.REVOKE, OperatorRequestKind.RESCHEDULE
RESOLVE = OperatorRequestKind.RESOLVE
S = TypeVar("S")


class PivotComposition(Reschedulable[S], ReceivesNotices):
    """The saga logic of parts around a pivot (see the module docstring)."""

    def _compose(
        self,
        ledger: SagaLedger,
        wish_date: datetime,
        parts: list[ProviderPart],
        pivot: StnLine | None,
    ) -> None:
        """Called by the workflow's ``__init__``: ``parts`` in the order they are
        prepared (``pivot``, if any, among them)."""
        self._ledger = ledger
        self._wish_date = wish_date
        self._steering = Steering(ledger, status=self.status)
        self._notice_board = NoticeBoard(ledger)
        # The provider step in flight: a cancellation waits for its outcome.
        self._step = InflightStep()
        self._parts = parts
        self._pivot_line = pivot
        # Parts with an effect to undo, in the order their steps started.
        self._started: list[ProviderPart] = []
        self._undone: set[str] = set()
        self._pending: list[PendingAction] = []
        self._cause: str | None = None
        self._pivot_passed = False

    async def _run_composition(self) -> None:
        """The whole saga: prepare, wait, pivot, finish or undo; then wait for an operator
        while something is owed."""
        try:
            await self._prepare()
            await self._steering.drive(
                self._advance, RequestHandlers(revoke=self._revoke, reschedule=self._reschedule)
            )
            await self._attend()
        except BaseException as error:
            if is_cancelled_exception(error):
                await asyncio.shield(asyncio.ensure_future(self._on_cancelled()))
                raise
            if not isinstance(error, ActivityError):
                raise
            # A step before the pivot failed: undo what the others did.
            await self._unwind(f"a step failed: {describe_failure(error)}")
            await self._attend()
        finally:
            self._steering.close()
            await self._steering.settle_outcomes()
        await workflow.wait_condition(workflow.all_handlers_finished)

    # -- before the pivot ------------------------------------------------------

    async def _prepare(self) -> None:
        self._ledger.enter(SagaPhase.SUBMITTING, "preparing every part for the churn date")
        for part in self._parts:
            await self._step.run(self._prepare_part(part))
        self._steering.scheduled(
            f"every part prepared; waiting until {self._wish_date.isoformat()}",
            effective=self._wish_date,
        )

    async def _prepare_part(self, part: ProviderPart) -> None:
        if part not in self._started:
            self._started.append(part)  # registered first: the step may land and still fail
        await part.prepare(self._wish_date)

    async def _advance(self) -> None:
        await self._steering.wait_then_poll(
            self._pivot,
            due=self._wish_date,
            reached="churn date reached; waiting for sTN to execute",
        )

    async def _pivot(self) -> None:
        """Wait for sTN's verdict, then finish every part, or undo everything."""
        line = self._pivot_line
        if line is not None and line.activation is not None and not line.executed:
            final = await self._steering.poll_interruptibly(line.await_final())
            if final is None:
                return  # the loop applies the operator's request first
        activation = line.activation if line else None
        if activation is not None and activation.status != "DONE":
            # ERROR (or cancelled at sTN): the line is still active.
            await self._unwind(f"sTN reported {activation.status}: {activation.error_message}")
            return
        self._pivot_passed = True
        self._steering.outcomes.point_of_no_return()
        if activation is not None:
            self._ledger.record("line_terminated", f"sTN activation {activation.id} is DONE")
        await self._finish_after_pivot()

    async def _finish_after_pivot(self) -> None:
        failures = []
        for part in self._parts:
            try:
                await part.finish()
            except StepFailed as error:
                self._add_pending(part.name, "finish", part.finish_description(), str(error))
                failures.append(str(error))
        if failures:
            self._ledger.fail(
                SagaPhase.NEEDS_ATTENTION, "the line is terminated but " + "; ".join(failures)
            )
            return
        self._ledger.enter(SagaPhase.COMPLETED, "every part ended for the churn date")

    # -- operator requests -----------------------------------------------------

    async def _revoke(self, request: RevokeRequest) -> None:
        await self._unwind(f"revoked: {request.reason or 'revoked by operator'}")
        if self._pivot_passed:
            raise Refused(
                "too late: sTN had already terminated the line, so the churn was carried "
                "out instead (every part finished)"
            )

    async def _reschedule(self, request: RescheduleRequest) -> None:
        previous, old, new = self._ledger.phase, self._wish_date, request.wish_date
        self._ledger.enter(SagaPhase.RESCHEDULING, f"moving the churn to {new.isoformat()}")
        line = self._pivot_line
        if line is not None and line.activation is not None:
            try:
                try:
                    await line.release(f"rescheduled to {new.isoformat()}")
                except StepFailed as stands:
                    raise Refused(f"cannot reschedule: {stands}") from None
            except (ActivityError, Refused) as error:
                self._ledger.note_error("reschedule_refused", describe_failure(error))
                self._ledger.enter(previous, "reschedule refused; carrying on")
                raise
        self._wish_date = new
        self._ledger.move_wish_date(new)
        try:
            # The pivot moves first, then the others follow it.
            if line is not None:
                await self._step.run(self._prepare_part(line))
            for part in self._parts:
                if part is not line:
                    await part.reschedule(new)
        except ActivityError as error:
            # The old date is gone at sTN and the new one was refused: undo it all.
            await self._unwind(
                f"reschedule from {old.isoformat()} failed: {describe_failure(error)}"
            )
            raise
        self._steering.scheduled(f"rescheduled to {new.isoformat()}", effective=new)

    # -- compensation ----------------------------------------------------------

    async def _on_cancelled(self) -> None:
        if self._pivot_passed:
            # The line is gone: finishing billing is the only consistent end.
            await self._finish_after_pivot()
        else:
            await self._unwind("workflow cancelled")
        await self._attend()

    async def _unwind(self, cause: str) -> None:
        """Undo every part (see :meth:`_undo_parts`). Failures stay as pending actions."""
        with urgent():  # a compensation's calls go before routine work in their lanes
            await self._undo_every_part(cause)

    async def _undo_every_part(self, cause: str) -> None:
        self._cause = cause
        self._ledger.enter(SagaPhase.COMPENSATING, cause)
        if self._step.running:
            for part in self._parts:
                part.stop(cause)
        # Let the step in flight finish: then we know what to undo.
        await self._step.settle()
        if await self._undo_parts():
            return  # the line was gone: the churn went forward instead
        if self._pending:
            self._ledger.fail(
                SagaPhase.NEEDS_ATTENTION,
                f"{self._cause}; could not undo: "
                + "; ".join(f"{p.part}: {p.error}" for p in self._pending),
            )
        else:
            self._ledger.enter(SagaPhase.COMPENSATED, f"{self._cause}; every part undone")

    async def _undo_parts(self) -> bool:
        """Undo every started part not undone yet: the line first, then newest first.

        The line is the one part that may be beyond undoing. If sTN executed it
        meanwhile, undoing the others would leave a terminated line with its
        billing running: the churn goes forward instead (``True``). If the line
        cannot be undone and has not executed, the others are held as pending
        actions until it is settled, so nothing is undone for a line that may still go.
        """
        cause = self._cause or ""
        todo = [part for part in reversed(self._started) if part.name not in self._undone]
        line = self._pivot_line
        if line is not None and line in todo:
            patches.retired(patches.CHURN_UNDO_LINE_FIRST)
            todo.remove(line)
            try:
                await line.undo(cause)
                self._undone.add(line.name)
            except StepFailed as error:
                verdict = await line.verdict(self._wish_date)
                if verdict == "DONE":
                    await self._go_forward(line)
                    return True
                if verdict == "ERROR":
                    self._ledger.record("line_kept", "sTN did not terminate the line after all")
                    self._undone.add(line.name)
                else:
                    self._add_pending(line.name, "undo", f"undo the {line.name} part", str(error))
                    for part in todo:
                        self._add_pending(
                            part.name,
                            "undo",
                            f"undo the {part.name} part once the line is undone",
                            "held: the line termination still stands",
                        )
                    return False
        for part in todo:
            try:
                await part.undo(cause)
                self._undone.add(part.name)
            except StepFailed as error:
                self._add_pending(part.name, "undo", f"undo the {part.name} part", str(error))
        return False

    async def _go_forward(self, line: StnLine) -> None:
        """The line was terminated before it could be undone: finish every part."""
        self._pivot_passed = True
        self._steering.outcomes.point_of_no_return()
        activation = line.activation.id if line.activation else "?"
        self._cause = (
            f"{self._cause}; too late: sTN had already terminated the line "
            f"(activation {activation}), so every part was finished instead"
        )
        self._ledger.record("line_terminated", f"sTN activation {activation} is DONE: forward")
        await self._finish_after_pivot()

    def _add_pending(
        self, part: str, kind: Literal["undo", "finish"], what: str, error: str
    ) -> None:
        self._pending = [p for p in self._pending if not (p.part == part and p.kind == kind)]
        self._pending.append(PendingAction(part=part, kind=kind, description=what, error=error))

    def _part(self, name: str) -> ProviderPart:
        return next(part for part in self._parts if part.name == name)

    # -- NEEDS_ATTENTION -------------------------------------------------------

    async def _attend(self) -> None:
        """Wait for an operator while something is still owed."""
        while self._pending:
            await self._steering.wait_for_request()
            await self._steering.apply_pending(
                RequestHandlers(resolve=self._resolve),
                otherwise="the saga needs attention: only resolve is possible",
            )

    async def _resolve(self, request: ResolveRequest) -> None:
        owed, self._pending = self._pending, []
        note = request.note or "no note"
        if request.action == ResolveAction.MARK_HANDLED:
            self._ledger.record(
                "resolved",
                f"operator marked handled: {note} (" + "; ".join(p.description for p in owed) + ")",
            )
            for action in owed:
                if action.kind == "undo":
                    self._undone.add(action.part)
        else:
            patches.retired(patches.CHURN_UNDO_LINE_FIRST)
            self._ledger.record("resolve_retry", f"operator asked to retry: {note}")
            for action in owed:
                if action.kind == "finish":
                    await self._finish_part(action)
            if any(action.kind == "undo" for action in owed) and await self._undo_parts():
                return  # the line was gone: the churn went forward and ended
        if self._pending:
            self._ledger.fail(
                SagaPhase.NEEDS_ATTENTION,
                "still failing: " + "; ".join(f"{p.part}: {p.error}" for p in self._pending),
            )
        elif any(action.kind == "finish" for action in owed):
            self._ledger.enter(SagaPhase.COMPLETED, f"every part ended for the churn date ({note})")
        else:
            self._ledger.enter(SagaPhase.COMPENSATED, f"{self._cause}; every part undone ({note})")

    async def _finish_part(self, action: PendingAction) -> None:
        try:
            await self._part(action.part).finish()
        except StepFailed as error:
            self._add_pending(action.part, action.kind, action.description, str(error))

    def _on_notice(self, notice: ProviderNotice) -> None:
        for part in self._parts:
            part.on_notice(notice)

    # -- handlers --------------------------------------------------------------

    def _refuse_reschedule(self, wish_date: datetime) -> None:
        if self._ledger.phase == SagaPhase.SUBMITTING:
            raise ValueError("cannot reschedule while the parts are being prepared; try again")
        for part in self._parts:
            refusal = part.reschedule_refusal(self._wish_date, wish_date)
            if refusal is not None:
                raise ValueError(f"cannot reschedule: {refusal}")

    @workflow.update(
        name=RESOLVE,
        description="Answer NEEDS_ATTENTION: retry what is owed, or mark it handled with a note",
    )
    async def resolve(self, request: ResolveRequest) -> S:
        return await self._steer(request)

    @resolve.validator
    def _validate_resolve(self, request: ResolveRequest) -> None:
        if self._ledger.phase != SagaPhase.NEEDS_ATTENTION:
            raise ValueError(f"nothing to resolve: the saga is {self._ledger.phase.value}")
        if self._steering.inbox.busy:
            raise ValueError("another request is being applied")

    def _provider_acted(self) -> str | None:
        line = self._pivot_line
        if self._pivot_passed or (line is not None and line.executed):
            return "sTN already executed the line termination"
        return None

    def _undone_parts(self) -> list[str]:
        """Parts whose effect was undone (or marked handled), in the order they started."""
        return [part.name for part in self._started if part.name in self._undone]
