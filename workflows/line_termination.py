"""LineTermination: terminate one sTN mobile line, durably, at its wish date.

submit TerminateSubscription → durable timer until the wish date → poll
QueryActivation until DONE/ERROR → COMPLETED or FAILED.

While it waits an operator can ``revoke`` (CancelTerminateSubscription → REVOKED)
or ``reschedule`` (cancel + resubmit with the new date); cancelling the workflow
undoes the submitted termination the same way. Termination is irreversible at
sTN, so everything that can still be undone is undone before DONE, and nothing
is attempted after it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

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
    from domain.stn import (
        Activation,
        CancelTermination,
        LineTerminationStatus,
        SubmitTermination,
        TerminationRequest,
        derived_reference_number,
        mask_phone_number,
    )

from workflows import patches, stn_steps
from workflows.inflight import InflightStep
from workflows.ledger import SagaLedger, describe_failure
from workflows.operator_updates import Reschedulable
from workflows.steering import Refused, Steering

REVOKE, RESCHEDULE = OperatorRequestKind.REVOKE, OperatorRequestKind.RESCHEDULE


@workflow.defn(name="LineTermination")
class LineTerminationSaga(Reschedulable[LineTerminationStatus]):
    @workflow.init
    def __init__(self, request: TerminationRequest) -> None:
        self._request = request
        self._wish_date: datetime | None = request.wish_date
        self._ledger = SagaLedger(SagaKind.LINE_TERMINATION, [Provider.STN])
        self._steering = Steering(self._ledger)
        self._submission: SubmitTermination | None = None
        self._submit_step = InflightStep()
        self._activation: Activation | None = None
        # sTN's cancellation of it (revoke, reschedule, undo), once asked for.
        self._cancellation: Activation | None = None
        self._submissions = 0
        self._provider_checks = 0
        # Set by the shielded-submit patch: a cancellation is compensated even
        # when it arrives as a cancelled activity.
        self._cancellation_compensates = False

    @workflow.run
    async def run(self, request: TerminationRequest) -> LineTerminationStatus:
        self._ledger.open(self._wish_date, request.customer_id)
        try:
            await self._submit()
            await self._drive()
        except BaseException as error:
            # Before the shielded-submit patch a cancelled submit activity counted
            # as a failure; such runs must replay that way.
            cancelled = is_cancelled_exception(error) and (
                self._cancellation_compensates or not isinstance(error, ActivityError)
            )
            if cancelled:
                # Undo even though we are being cancelled: shield the compensation.
                await asyncio.shield(asyncio.ensure_future(self._compensate("workflow cancelled")))
                raise
            if not isinstance(error, ActivityError):
                raise
            self._ledger.fail(SagaPhase.FAILED, describe_failure(error))
        finally:
            self._steering.close()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    # -- the main loop -------------------------------------------------------

    async def _drive(self) -> None:
        """Wait, then poll, until final; operator requests are applied between steps."""
        await self._steering.drive(
            self._advance, {REVOKE: self._revoke, RESCHEDULE: self._reschedule}
        )

    async def _advance(self) -> None:
        await self._steering.wait_then_poll(
            self._poll,
            due=self._wish_date,
            reached="wish date reached; waiting for sTN to execute",
        )

    async def _submit(self) -> None:
        self._submissions += 1
        info = workflow.info()
        reference = self._request.reference_number
        if reference is None or self._submissions > 1:
            reference = derived_reference_number(info.workflow_id, info.run_id, self._submissions)
        self._submission = SubmitTermination(
            subscription_id=self._request.subscription_id,
            phone_number=self._request.phone_number,
            wish_date=self._wish_date,
            reference_number=reference,
        )
        self._ledger.enter(SagaPhase.SUBMITTING, f"asking sTN to terminate (reference {reference})")
        # Shielded: a workflow cancellation no longer cancels the submit activity
        # (which cannot stop an HTTP call already sent); the compensation waits
        # for its outcome and undoes exactly that. Before the patch a cancellation
        # mid-submit cancelled the activity and ended FAILED without undoing; runs
        # from then replay that path.
        shielded = patches.patched(patches.SHIELDED_SUBMIT)
        self._cancellation_compensates = shielded
        await self._submit_step.run(self._send_submission(self._submission), shield=shielded)
        assert self._activation is not None
        when = self._wish_date.isoformat() if self._wish_date else "as soon as possible"
        self._ledger.enter(
            SagaPhase.WAITING, f"activation {self._activation.id} scheduled for {when}"
        )

    async def _send_submission(self, submission: SubmitTermination) -> None:
        result = await stn_steps.submit_termination(submission)
        self._activation = result.activation
        recovered = " (found after a lost response)" if result.recovered else ""
        self._ledger.record(
            "submitted",
            f"activation {result.activation.id} is {result.activation.status}{recovered}; "
            f"attempt {result.attempt}",
        )

    async def _poll(self) -> None:
        assert self._activation is not None
        checked = await self._steering.poll_interruptibly(
            stn_steps.await_activation_final(self._activation.id),
            still_pending="sTN has not finished after a day; still polling",
        )
        if checked is None:
            return
        self._provider_checks += checked.checks
        self._settle(checked.activation)

    def _settle(self, activation: Activation) -> None:
        """Record a final provider status as the saga's outcome."""
        self._activation = activation
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
        cancelled = await self._cancel_activation(REVOKE, note, previous)
        self._ledger.enter(SagaPhase.REVOKED, f"{note} (activation {cancelled})")

    async def _reschedule(self, request: RescheduleRequest) -> None:
        previous = self._ledger.phase
        self._ledger.enter(SagaPhase.RESCHEDULING, f"moving to {request.wish_date.isoformat()}")
        note = f"rescheduled to {request.wish_date.isoformat()}"
        # Resubmitted only once sTN confirmed the old termination is cancelled.
        await self._cancel_activation(RESCHEDULE, note, previous)
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

    async def _cancel_activation(
        self, kind: OperatorRequestKind, note: str, previous: SagaPhase
    ) -> str:
        """Cancel the termination for an operator request; the id of the cancellation.

        If sTN refuses, or cannot carry the cancellation out, the request is refused
        and the saga carries on where it was (or ends, if sTN executed meanwhile).
        """
        assert self._activation is not None
        try:
            undo = await stn_steps.cancel_termination(
                CancelTermination(activation_id=self._activation.id, note=note)
            )
        except ActivityError as error:
            self._refused(kind, previous, describe_failure(error))
            raise
        self._learn(undo)
        if undo.failure is None:
            return undo.cancellation.id if undo.cancellation else self._activation.id
        if self._activation.is_done:
            self._settle(self._activation)  # sTN executed it after all: COMPLETED
        else:
            self._refused(kind, previous, undo.failure)
        raise Refused(f"cannot {kind}: {undo.failure}")

    def _refused(self, kind: OperatorRequestKind, previous: SagaPhase, why: str) -> None:
        self._ledger.note_error(f"{kind}_refused", why)
        self._ledger.enter(previous, f"{kind} refused; carrying on")

    def _learn(self, undo: stn_steps.Undo) -> None:
        if not undo.followed:
            # Runs recorded before the patch kept the cancellation's answer.
            if undo.cancellation is not None:
                self._activation = undo.cancellation
            return
        self._cancellation = undo.cancellation
        if undo.termination is not None:
            self._activation = undo.termination

    async def _compensate(self, reason: str) -> None:
        """Undo the submitted termination after a workflow cancellation."""
        self._ledger.enter(SagaPhase.COMPENSATING, reason)
        await self._submit_step.settle()
        if self._activation is not None and self._activation.is_executed:
            # Too late: sTN already executed (or failed) it. Report what happened.
            self._settle(self._activation)
            return
        if self._submission is None or (self._activation and self._activation.is_cancelled):
            self._ledger.enter(SagaPhase.REVOKED, f"{reason}; nothing to undo")
            return
        try:
            undo = await stn_steps.cancel_termination(
                CancelTermination(
                    activation_id=self._activation.id if self._activation else None,
                    submitted=self._submission,
                    note=reason,
                )
            )
        except ActivityError as error:
            self._ledger.fail(
                SagaPhase.FAILED, f"{reason}; could not undo: {describe_failure(error)}"
            )
            return
        self._learn(undo)
        if undo.failure is not None:
            if self._activation is not None and self._activation.is_done:
                self._settle(self._activation)
            else:
                self._ledger.fail(SagaPhase.FAILED, f"{reason}; could not undo: {undo.failure}")
            return
        undone = undo.cancellation
        what = f"activation {undone.id} cancelled" if undone else "sTN never created one"
        self._ledger.enter(SagaPhase.REVOKED, f"{reason}; {what}")

    # -- handlers --------------------------------------------------------------

    def _provider_acted(self) -> str | None:
        activation = self._activation
        if activation is not None and activation.is_executed:
            return f"sTN already executed the termination ({activation.status})"
        return None

    @workflow.query(name=SagaQuery.STATUS)
    def status(self) -> LineTerminationStatus:
        activation = self._activation
        return LineTerminationStatus(
            workflow_id=workflow.info().workflow_id,
            phase=self._ledger.phase,
            subscription_id=self._request.subscription_id,
            phone_number=mask_phone_number(self._request.phone_number),
            customer_id=self._request.customer_id,
            wish_date=self._wish_date,
            reference_number=self._submission.reference_number if self._submission else None,
            activation_id=activation.id if activation else None,
            activation_status=activation.status if activation else None,
            cancellation_id=self._cancellation.id if self._cancellation else None,
            cancellation_status=self._cancellation.status if self._cancellation else None,
            submissions=self._submissions,
            provider_checks=self._provider_checks,
            last_error=self._ledger.last_error,
            steps=list(self._ledger.steps),
        )
