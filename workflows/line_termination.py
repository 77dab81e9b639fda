"""LineTermination: terminate one sTN mobile line, durably, at its wish date.

submit TerminateSubscription → durable timer until the wish date → poll
QueryActivation until DONE/ERROR → COMPLETED or FAILED.

While it waits an operator can ``revoke`` (CancelTerminateSubscription → REVOKED)
or ``reschedule`` (cancel + resubmit with the new date); cancelling the workflow
undoes the submitted termination the same way. Termination is irreversible at
sTN, so everything that can still be undone is undone before DONE, and nothing
is attempted after it. What sTN is asked and how its answers are read is the
part, :class:`workflows.stn_line.StnLine`; this saga decides what they mean.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.common import (
        OperatorRequestKind,
        Provider,
        RescheduleRequest,
        RevokeRequest,
        SagaKind,
        SagaPhase,
        SagaQuery,
    )
    from domain.stn import Activation, LineTerminationStatus, TerminationRequest

from workflows import patches
from workflows.inflight import InflightStep
from workflows.ledger import SagaLedger, describe_failure
from workflows.operator_updates import Reschedulable
from workflows.parts import StepFailed, TooLate
from workflows.steering import Refused, RequestHandlers, Steering
from workflows.stn_line import StnLine

REVOKE, RESCHEDULE = OperatorRequestKind.REVOKE, OperatorRequestKind.RESCHEDULE


# Worker Versioning: AUTO_UPGRADE, declared in workflows/versioning.py (why there).
@workflow.defn(name="LineTermination")
class LineTerminationSaga(Reschedulable[LineTerminationStatus]):
    @workflow.init
    def __init__(self, request: TerminationRequest) -> None:
        self._request = request
        self._wish_date: datetime | None = request.wish_date
        self._ledger = SagaLedger(SagaKind.LINE_TERMINATION, [Provider.STN])
        self._steering = Steering(self._ledger, status=self.status)
        self._line = StnLine(request, self._ledger)
        self._submit_step = InflightStep()
        # Set by the shielded-submit patch: a cancellation is compensated even
        # when it arrives as a cancelled activity.
        self._cancellation_compensates = False

    @workflow.run
    async def run(self, request: TerminationRequest) -> LineTerminationStatus:
        self._ledger.open(self._wish_date, request.customer_id)
        # Before the shielded-submit patch a cancelled submit activity counted as a
        # failure; such runs must replay that way.
        await self._steering.run(
            self._steps,
            compensate=self._compensate,
            cancelled_calls_compensate=lambda: self._cancellation_compensates,
        )
        return self.status()

    # -- the main loop -------------------------------------------------------

    async def _steps(self) -> None:
        """Submit, then wait and poll until final; operator requests between steps."""
        await self._submit()
        await self._steering.drive(
            self._advance, RequestHandlers(revoke=self._revoke, reschedule=self._reschedule)
        )

    async def _advance(self) -> None:
        await self._steering.wait_then_poll(
            self._poll,
            due=self._wish_date,
            reached="wish date reached; waiting for sTN to execute",
        )

    async def _submit(self) -> None:
        submission = self._line.new_submission(self._wish_date, self._request.reference_number)
        self._ledger.enter(
            SagaPhase.SUBMITTING,
            f"asking sTN to terminate (reference {submission.reference_number})",
        )
        # Shielded: a workflow cancellation does not cancel the submit activity
        # (which cannot stop an HTTP call already sent); the compensation waits
        # for its outcome and undoes exactly that (retired patch: README "Releases").
        patches.retired(patches.SHIELDED_SUBMIT)
        self._cancellation_compensates = True
        await self._submit_step.run(self._send(), shield=True)
        assert self._line.activation is not None
        when = self._wish_date.isoformat() if self._wish_date else "as soon as possible"
        self._steering.scheduled(
            f"activation {self._line.activation.id} scheduled for {when}",
            effective=self._wish_date,
        )

    async def _send(self) -> None:
        assert self._line.submission is not None
        result = await self._line.send(self._line.submission)
        recovered = " (found after a lost response)" if result.recovered else ""
        self._ledger.record(
            "submitted",
            f"activation {result.activation.id} is {result.activation.status}{recovered}; "
            f"attempt {result.attempt}",
        )

    async def _poll(self) -> None:
        final = await self._steering.poll_interruptibly(
            self._line.await_final(),
            still_pending="sTN has not finished after a day; still polling",
        )
        if final is not None:
            self._settle(final)

    def _settle(self, activation: Activation) -> None:
        """Record sTN's final word as the saga's outcome."""
        if activation.status == "DONE":
            self._ledger.enter(
                SagaPhase.COMPLETED,
                f"sTN terminated the line (activation {activation.id}, "
                f"{activation.activated_date or 'date not reported'})",
            )
        elif activation.is_cancelled:
            self._ledger.enter(SagaPhase.REVOKED, f"activation {activation.id} was cancelled")
        else:
            self._ledger.fail(
                SagaPhase.FAILED, f"sTN reported {activation.status}: {activation.error_message}"
            )

    # -- operator requests ---------------------------------------------------

    async def _revoke(self, request: RevokeRequest) -> None:
        previous = self._ledger.phase
        note = request.reason or "revoked by operator"
        self._ledger.enter(SagaPhase.REVOKING, note)
        cancelled = await self._release(REVOKE, note, previous)
        self._ledger.enter(SagaPhase.REVOKED, f"{note} (activation {cancelled})")

    async def _reschedule(self, request: RescheduleRequest) -> None:
        previous = self._ledger.phase
        self._ledger.enter(SagaPhase.RESCHEDULING, f"moving to {request.wish_date.isoformat()}")
        note = f"rescheduled to {request.wish_date.isoformat()}"
        # Resubmitted only once sTN confirmed the old termination is cancelled.
        await self._release(RESCHEDULE, note, previous)
        self._wish_date = request.wish_date
        self._ledger.move_wish_date(request.wish_date)
        try:
            await self._submit()
        except ActivityError as error:
            # The old termination is gone and sTN refused the new one: say so loudly.
            self._ledger.fail(
                SagaPhase.FAILED, f"resubmission after reschedule failed: {describe_failure(error)}"
            )
            raise

    async def _release(self, kind: OperatorRequestKind, note: str, previous: SagaPhase) -> str:
        """Cancel the termination for an operator request; the id of the cancellation.

        If sTN refuses, or cannot carry the cancellation out, the request is refused
        and the saga carries on where it was (or ends, if sTN executed meanwhile).
        """
        try:
            return await self._line.release(note)
        except ActivityError as error:
            self._refused(kind, previous, describe_failure(error))
            raise
        except TooLate as late:
            assert self._line.activation is not None
            self._settle(self._line.activation)  # sTN executed it after all: COMPLETED
            raise Refused(f"cannot {kind}: {late}") from None
        except StepFailed as failed:
            self._refused(kind, previous, str(failed))
            raise Refused(f"cannot {kind}: {failed}") from None

    def _refused(self, kind: OperatorRequestKind, previous: SagaPhase, why: str) -> None:
        self._ledger.note_error(f"{kind}_refused", why)
        self._ledger.enter(previous, f"{kind} refused; carrying on")

    async def _compensate(self, reason: str) -> None:
        """Undo the submitted termination after a workflow cancellation."""
        self._ledger.enter(SagaPhase.COMPENSATING, reason)
        await self._submit_step.settle()
        line = self._line
        if line.activation is not None and line.activation.is_executed:
            # Too late: sTN already executed (or failed) it. Report what happened.
            self._settle(line.activation)
            return
        if line.submission is None or (line.activation and line.activation.is_cancelled):
            self._ledger.enter(SagaPhase.REVOKED, f"{reason}; nothing to undo")
            return
        try:
            what = await line.take_back(reason)
        except TooLate:
            assert line.activation is not None
            self._settle(line.activation)
            return
        except StepFailed as failed:
            self._ledger.fail(SagaPhase.FAILED, f"{reason}; could not undo: {failed}")
            return
        self._ledger.enter(SagaPhase.REVOKED, f"{reason}; {what}")

    # -- handlers --------------------------------------------------------------

    def _provider_acted(self) -> str | None:
        activation = self._line.activation
        if activation is not None and activation.is_executed:
            return f"sTN already executed the termination ({activation.status})"
        return None

    @workflow.query(name=SagaQuery.STATUS)
    def status(self) -> LineTerminationStatus:
        return LineTerminationStatus(
            workflow_id=workflow.info().workflow_id,
            phase=self._ledger.phase,
            customer_id=self._request.customer_id,
            wish_date=self._wish_date,
            submissions=self._line.submissions,
            provider_checks=self._line.provider_checks,
            last_error=self._ledger.last_error,
            steps=list(self._ledger.steps),
            jeopardy=list(self._ledger.jeopardy),
            **dict(self._line.state()),
        )
