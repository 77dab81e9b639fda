"""Rebilly's part: one order's cancellation, put, followed, undone.

The one place a saga puts an order cancellation (``PUT`` with our id: a draft or a
confirmed one), polls it to ``completed``, and undoes it (:class:`RebillyBilling`).
The OrderCancellation saga composes it with the steering kernel; the customer churn
keeps it a draft until its pivot and confirms it after.

Undoing follows one rule everywhere (:meth:`RebillyBilling.withdraw`): a draft is
deleted, a confirmed cancellation revoked by an order reactivation, and a
``completed`` one cannot be undone — Rebilly says so (:class:`CompletedAtRebilly`),
whichever saga asks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.churn import RebillyPartState
    from domain.common import Provider
    from domain.rebilly import (
        Cancellation,
        OrderCancellationRequest,
        PutCancellation,
        PutResult,
        Reactivated,
        ReactivateOrder,
        ReactivationOutcome,
        RebillyStatus,
        derived_cancellation_id,
    )

from workflows import patches, rebilly_steps
from workflows.ledger import SagaLedger, describe_failure
from workflows.parts import ProviderPart, StepFailed, TooLate


class CompletedAtRebilly(TooLate):
    """Rebilly completed the cancellation: the order churned and stays churned."""

    def __init__(self, cancellation: Cancellation, *, answered_reactivation: bool) -> None:
        self.cancellation = cancellation
        # Rebilly's answer to our reactivation (not our own last look) said so.
        self.answered_reactivation = answered_reactivation
        super().__init__(
            f"Rebilly already completed cancellation {cancellation.id} (order churned at "
            f"{when(cancellation.churn_time)}); a completed cancellation cannot be undone"
        )


class RebillyBilling(ProviderPart):
    """Rebilly: the cancellation of ``order``, under ids derived from the run.

    ``on_churn_time``: told every churn time Rebilly reports (OrderCancellation shows
    it as the saga's wish date; in a churn the date is the churn's own).
    """

    name = Provider.REBILLY.value

    def __init__(
        self,
        order: OrderCancellationRequest,
        ledger: SagaLedger,
        *,
        on_churn_time: Callable[[datetime], None] | None = None,
    ) -> None:
        super().__init__(ledger)
        self._order = order
        self._on_churn_time = on_churn_time
        self.churn_time = order.churn_time
        self.churn_time_policy = order.churn_time_policy
        self.cancellation_id: str | None = None
        # The last state Rebilly reported (None: not created yet, or a deleted draft).
        self.cancellation: Cancellation | None = None
        # A PUT whose outcome the saga has not learnt yet.
        self.pending_put: PutCancellation | None = None
        self.submissions = 0
        self.provider_checks = 0

    def learn(self, cancellation: Cancellation) -> None:
        """Keep Rebilly's latest word."""
        self.cancellation = cancellation
        if cancellation.churn_time is not None and self._on_churn_time is not None:
            self._on_churn_time(cancellation.churn_time)

    @property
    def status(self) -> RebillyStatus | None:
        return self.cancellation.status if self.cancellation else None

    # -- putting -------------------------------------------------------------------

    def new_put(self, status: RebillyStatus, *, new_id: bool) -> PutCancellation:
        """The next PUT to send (:meth:`send`): a new cancellation id, or the same one
        (a draft updated in place, a draft confirmed)."""
        if new_id or self.cancellation_id is None:
            self.submissions += 1
            info = workflow.info()
            self.cancellation_id = derived_cancellation_id(
                info.workflow_id, info.first_execution_run_id, self.submissions
            )
        body = self._order.body(status)
        body.churn_time = self.churn_time
        body.churn_time_policy = self.churn_time_policy
        self.pending_put = PutCancellation(cancellation_id=self.cancellation_id, body=body)
        return self.pending_put

    async def send(self, put: PutCancellation) -> PutResult:
        result = await rebilly_steps.put_cancellation(put)
        self.pending_put = None
        self.learn(result.cancellation)
        return result

    async def find(self) -> Cancellation | None:
        """What Rebilly holds under the id of the last PUT (its answer was lost)."""
        assert self.cancellation_id is not None
        found = await rebilly_steps.find_cancellation(self.cancellation_id)
        self.pending_put = None
        if found is not None:
            self.learn(found)
        return found

    async def await_completed(self) -> Cancellation:
        """Poll the cancellation until Rebilly completed it (at its churn time)."""
        assert self.cancellation_id is not None
        checked = await rebilly_steps.await_cancellation_completed(self.cancellation_id)
        self.provider_checks += checked.checks
        self.learn(checked.cancellation)
        return checked.cancellation

    # -- undoing -------------------------------------------------------------------

    async def withdraw(self, note: str) -> str:
        """Undo our cancellation: delete a draft, reactivate a confirmed one; what was done.

        :class:`CompletedAtRebilly` once Rebilly completed it; an ``ActivityError``
        when Rebilly refused or could not be reached.
        """
        cancellation = self.cancellation
        if cancellation is None:
            return "nothing to undo"
        if cancellation.status == RebillyStatus.COMPLETED:
            raise CompletedAtRebilly(cancellation, answered_reactivation=False)
        if cancellation.status == RebillyStatus.REVOKED:
            return f"cancellation {cancellation.id} was already revoked"
        if cancellation.status == RebillyStatus.DRAFT:
            deleted = await rebilly_steps.delete_draft(cancellation.id)
            self.cancellation = None
            gone = " (already gone)" if deleted.already_gone else ""
            return f"draft {cancellation.id} deleted{gone}"
        reactivated = await self._reactivate(cancellation, note)
        if reactivated.outcome == ReactivationOutcome.ALREADY_COMPLETED:
            raise CompletedAtRebilly(reactivated.cancellation, answered_reactivation=True)
        if reactivated.outcome == ReactivationOutcome.ALREADY_REVOKED:
            return f"cancellation {cancellation.id} was already revoked"
        if reactivated.outcome == ReactivationOutcome.RESTARTED:
            return (
                f"cancellation {cancellation.id} completed first; the reactivation "
                f"({reactivated.reactivation_id}) restarted the order with a new service period"
            )
        return (
            f"order reactivated ({reactivated.reactivation_id}); "
            f"cancellation {cancellation.id} revoked"
        )

    async def _reactivate(self, cancellation: Cancellation, note: str) -> Reactivated:
        reactivated = await rebilly_steps.reactivate_order(
            ReactivateOrder(
                cancellation_id=cancellation.id, order_id=cancellation.order_id, description=note
            )
        )
        self.learn(reactivated.cancellation)
        return reactivated

    # -- as a part of a composition (``workflows.parts``) ---------------------------
    # A draft until the pivot: a confirmed Rebilly cancellation completes (immutable)
    # at its churn time, the moment sTN executes; had sTN then reported ERROR, billing
    # could no longer be undone. Deleting a draft undoes it completely.

    async def prepare(self, wish_date: datetime) -> None:
        self.churn_time = wish_date
        result = await self.send(self.new_put(RebillyStatus.DRAFT, new_id=True))
        subtotal = result.cancellation.line_item_subtotal
        proration = f"; proration {subtotal.amount} {subtotal.currency}" if subtotal else ""
        self._ledger.record(
            "billing_drafted",
            f"Rebilly draft {self.cancellation_id} for order {self._order.order_id}{proration}",
        )

    async def reschedule(self, wish_date: datetime) -> None:
        self.churn_time = wish_date
        if self.cancellation_id is not None:
            # A draft is updated in place: same id, new churn time.
            await self.send(self.new_put(RebillyStatus.DRAFT, new_id=False))

    async def undo(self, cause: str) -> None:
        try:
            if self.cancellation is None and await self.find() is None:
                self._ledger.record("billing_undone", "Rebilly never created the draft")
                return
            what = await self.withdraw(cause)
        except CompletedAtRebilly as late:
            if late.answered_reactivation and not patches.patched(
                patches.CHURN_COMPLETED_BILLING_NOT_UNDONE
            ):
                # Runs recorded before the patch took Rebilly's answer as an undo.
                self._ledger.record("billing_undone", "order reactivated (ALREADY_COMPLETED)")
                return
            raise
        except ActivityError as error:
            raise StepFailed(describe_failure(error)) from None
        self._ledger.record("billing_undone", what)

    async def finish(self) -> None:
        """Confirm the draft for the date and poll it to ``completed``."""
        try:
            await self.send(self.new_put(RebillyStatus.CONFIRMED, new_id=False))
            self._ledger.record("billing_confirmed", f"Rebilly cancellation {self.cancellation_id}")
            await self.await_completed()
        except ActivityError as error:
            raise StepFailed(f"billing could not be cancelled: {describe_failure(error)}") from None
        self._ledger.record(
            "billing_completed", f"Rebilly cancellation {self.cancellation_id} completed"
        )

    def finish_description(self) -> str:
        return (
            f"confirm Rebilly cancellation {self.cancellation_id} (the line is already terminated)"
        )

    def state(self) -> RebillyPartState:
        billing = self.cancellation
        return RebillyPartState(
            order_id=self._order.order_id,
            cancellation_id=self.cancellation_id,
            status=billing.status.value if billing else None,
            churn_time=billing.churn_time if billing else None,
            line_item_subtotal=billing.line_item_subtotal if billing else None,
        )


def when(moment: datetime | None) -> str:
    return moment.isoformat() if moment is not None else "a time Rebilly did not report"
