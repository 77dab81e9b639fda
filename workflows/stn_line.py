"""sTN's part: one mobile line's termination, submitted, followed, cancelled.

The one place a saga submits a termination, polls it, cancels it and learns what
sTN did (:class:`StnLine`). The LineTermination saga composes it with the steering
kernel; the customer churn uses it as its **pivot**: a termination sTN executed
(``DONE``) is irreversible, so every other part is finished, never undone, after it.

sTN cancels asynchronously (``stn_steps.cancel_termination``): a cancellation is
followed until sTN decided, so "cancelled" here always means sTN confirmed it.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain import outcomes
    from domain.churn import StnPartState
    from domain.common import Provider
    from domain.outcomes import JeopardyCause
    from domain.stn import (
        Activation,
        ActivationStatus,
        CancelTermination,
        SubmittedTermination,
        SubmitTermination,
        TerminationRequest,
        derived_reference_number,
        mask_phone_number,
    )

from workflows import stn_steps
from workflows.ledger import SagaLedger, describe_failure
from workflows.parts import ProviderPart, StepFailed, TooLate


class StnLine(ProviderPart):
    """sTN: the termination of ``line`` (a :class:`TerminationRequest`'s line)."""

    name = Provider.STN.value

    def __init__(self, line: TerminationRequest, ledger: SagaLedger) -> None:
        super().__init__(ledger)
        self._line = line
        self.submission: SubmitTermination | None = None
        # The termination as sTN last showed it.
        self.activation: Activation | None = None
        # sTN's cancellation of it (revoke, reschedule, undo), once asked for.
        self.cancellation: Activation | None = None
        self.submissions = 0
        self.provider_checks = 0
        # When an immediate termination was first followed (its jeopardy clock).
        self._first_followed: datetime | None = None

    # -- submitting ----------------------------------------------------------------

    def new_submission(
        self, wish_date: datetime | None, reference: str | None = None
    ) -> SubmitTermination:
        """The next TerminateSubscription to send (:meth:`send`), kept as ``submission``.

        ``reference``: the caller's reference number, for the first submission only;
        every other one gets a reference derived from the run (a resubmission must not
        be mistaken for the first by sTN's lookup).
        """
        self.submissions += 1
        if reference is None or self.submissions > 1:
            info = workflow.info()
            reference = derived_reference_number(info.workflow_id, info.run_id, self.submissions)
        self.submission = SubmitTermination(
            subscription_id=self._line.subscription_id,
            phone_number=self._line.phone_number,
            wish_date=wish_date,
            reference_number=reference,
        )
        return self.submission

    async def send(self, submission: SubmitTermination) -> SubmittedTermination:
        result = await stn_steps.submit_termination(submission)
        self.activation = result.activation
        return result

    # -- following -----------------------------------------------------------------

    async def await_final(self) -> Activation:
        """Poll the termination until sTN executed it (``DONE``) or gave up (``ERROR``).

        Declares the deadline it races: still not executed ``STN_BUSY_HORIZON`` after
        its wish date (or after this first poll, for an immediate termination), the
        saga is in jeopardy (``domain.outcomes``).
        """
        assert self.activation is not None
        submission = self.submission
        if submission is not None:
            due = submission.wish_date or self._first_followed or workflow.now()
            self._first_followed = due
            self._ledger.deadline(
                JeopardyCause.STN_BUSY,
                due + outcomes.STN_BUSY_HORIZON,
                lambda: self.submission is submission and not self.executed,
                f"sTN has not executed the termination {outcomes.STN_BUSY_HORIZON} after "
                f"{due.isoformat()}",
            )
        checked = await stn_steps.await_activation_final(self.activation.id)
        self.provider_checks += checked.checks
        self.activation = checked.activation
        return checked.activation

    @property
    def executed(self) -> bool:
        """sTN executed the termination or gave up on it: it can no longer be cancelled."""
        return self.activation is not None and self.activation.is_executed

    async def verdict(self, due: datetime) -> str | None:
        """The termination's final status once sTN would not cancel it, if known.

        Polled only when ``due`` (the wish date) has come: sTN then decides within its
        processing time; before it, a termination that stands stays ``BUSY``.
        """
        activation = self.activation
        if activation is None:
            return None
        if not activation.is_final and workflow.now() >= due:
            try:
                activation = await self.await_final()
            except ActivityError as error:
                self._ledger.note_error("line_unknown", describe_failure(error))
                return None
        return activation.status if activation.is_final else None

    # -- cancelling ----------------------------------------------------------------

    async def _cancel(self, note: str, *, find_submission: bool) -> stn_steps.Undo:
        """CancelTerminateSubscription, followed until sTN decided, and learnt.

        ``find_submission``: also send the submission, so sTN's termination is found
        by its reference when its id was never learnt (a lost answer).
        """
        undo = await stn_steps.cancel_termination(
            CancelTermination(
                activation_id=self.activation.id if self.activation else None,
                submitted=self.submission if find_submission else None,
                note=note,
            )
        )
        if undo.cancellation is None:
            return undo
        self.cancellation = undo.cancellation
        if undo.termination is not None:
            self.activation = undo.termination
        return undo

    async def release(self, note: str) -> str:
        """Cancel the termination for an operator's revoke or reschedule.

        Returns the id of sTN's cancellation. An ``ActivityError`` when sTN refused or
        was unreachable; :class:`TooLate` when sTN executed the termination meanwhile;
        :class:`StepFailed` when sTN could not cancel it (the termination stands).
        """
        assert self.activation is not None
        undo = await self._cancel(note, find_submission=False)
        if undo.failure is None:
            return undo.cancellation.id if undo.cancellation else self.activation.id
        if self.activation.is_done:
            raise TooLate(undo.failure)
        raise StepFailed(undo.failure)

    async def take_back(self, cause: str) -> str:
        """Compensation: cancel whatever was submitted; what was undone.

        :class:`TooLate` when sTN executed it meanwhile; :class:`StepFailed` when
        sTN could not be reached or could not cancel it.
        """
        try:
            undo = await self._cancel(cause, find_submission=True)
        except ActivityError as error:
            raise StepFailed(describe_failure(error)) from None
        if undo.failure is not None:
            stands = f"{undo.failure}; the line will be terminated"
            if self.activation is not None and self.activation.is_done:
                raise TooLate(stands)
            raise StepFailed(stands)
        undone = undo.cancellation
        return f"activation {undone.id} cancelled" if undone else "sTN never created one"

    # -- as a part of a composition (``workflows.parts``) ---------------------------

    async def prepare(self, wish_date: datetime) -> None:
        result = await self.send(self.new_submission(wish_date))
        recovered = " (found after a lost response)" if result.recovered else ""
        self._ledger.record(
            "line_submitted",
            f"sTN activation {result.activation.id} for {wish_date.isoformat()}{recovered}",
        )

    async def undo(self, cause: str) -> None:
        activation = self.activation
        if activation is not None and activation.status == ActivationStatus.ERROR:
            self._ledger.record("line_kept", "sTN did not terminate the line: nothing to undo")
            return
        if activation is not None and activation.is_executed:
            raise TooLate(f"sTN already terminated the line (activation {activation.id})")
        self._ledger.record("line_undone", await self.take_back(cause))

    def state(self) -> StnPartState:
        activation, cancellation = self.activation, self.cancellation
        return StnPartState(
            subscription_id=self._line.subscription_id,
            phone_number=mask_phone_number(self._line.phone_number),
            reference_number=self.submission.reference_number if self.submission else None,
            activation_id=activation.id if activation else None,
            activation_status=activation.status if activation else None,
            cancellation_id=cancellation.id if cancellation else None,
            cancellation_status=cancellation.status if cancellation else None,
        )
