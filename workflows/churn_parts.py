"""The customer churn's parts: one object per provider behind one protocol.

The churn saga (``workflows.customer_churn``) decides *when*: prepare every part
for the churn date, wait, pass the pivot (sTN executed), finish every part, or
undo them newest first. A part knows *how* for its provider:

* :meth:`~ChurnPart.prepare` — before the pivot, make the part end at the date;
* :meth:`~ChurnPart.reschedule` — move a prepared part to a new date;
* :meth:`~ChurnPart.undo` — compensation; raises :class:`StepFailed` when it cannot;
* :meth:`~ChurnPart.finish` — after the pivot (forward recovery only);
* :meth:`~ChurnPart.state` — its part of the ``status`` query.

A fourth provider adds one class here and one field to the status model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.airalo import FutureOrder, FutureOrderCancellationRequest, RecreatedFutureOrder
    from domain.churn import AiraloPartState, RebillyPartState, StnPartState
    from domain.rebilly import (
        Cancellation,
        OrderCancellationRequest,
        PutCancellation,
        ReactivateOrder,
        RebillyStatus,
        derived_cancellation_id,
    )
    from domain.stn import (
        Activation,
        CancelTermination,
        SubmitTermination,
        TerminationRequest,
        derived_reference_number,
        mask_phone_number,
    )

from workflows import airalo_steps, patches, rebilly_steps, stn_steps
from workflows.airalo_canceller import FutureOrderCanceller
from workflows.ledger import SagaLedger, describe_failure
from workflows.steering import Refused

PartName = Literal["stn", "rebilly", "airalo"]


class StepFailed(Exception):
    """A compensation or post-pivot step that failed permanently (kept as pending)."""


class ChurnPart:
    """What the churn saga asks of every provider part (the defaults do nothing)."""

    name: PartName

    def __init__(self, ledger: SagaLedger) -> None:
        self._ledger = ledger

    async def prepare(self, wish_date: datetime) -> None:
        """Before the pivot: make the part end at ``wish_date``."""

    async def reschedule(self, wish_date: datetime) -> None:
        """Move the prepared part to ``wish_date`` (an ActivityError unwinds the churn)."""

    def reschedule_refusal(self, old: datetime, new: datetime) -> str | None:
        """Why this part cannot move from ``old`` to ``new``, if it cannot."""
        return None

    def stop(self, cause: str) -> None:
        """Compensation starts while :meth:`prepare` runs: wind it down."""

    async def undo(self, cause: str) -> None:
        """Undo what :meth:`prepare` did; :class:`StepFailed` when it cannot."""

    async def finish(self) -> None:
        """After the pivot; :class:`StepFailed` when it cannot."""

    def finish_description(self) -> str:
        return f"finish the {self.name} part"

    def state(self) -> BaseModel | None:
        return None


class LinePart(ChurnPart):
    """sTN: the line termination, the churn's pivot (irreversible once executed)."""

    name: PartName = "stn"

    def __init__(self, line: TerminationRequest, ledger: SagaLedger) -> None:
        super().__init__(ledger)
        self._line = line
        self.submission: SubmitTermination | None = None
        self.activation: Activation | None = None
        # sTN's cancellation of it (reschedule, undo), once asked for.
        self.cancellation: Activation | None = None
        self._submissions = 0

    async def prepare(self, wish_date: datetime) -> None:
        self._submissions += 1
        info = workflow.info()
        self.submission = SubmitTermination(
            subscription_id=self._line.subscription_id,
            phone_number=self._line.phone_number,
            wish_date=wish_date,
            reference_number=derived_reference_number(
                info.workflow_id, info.run_id, self._submissions
            ),
        )
        result = await stn_steps.submit_termination(self.submission)
        self.activation = result.activation
        recovered = " (found after a lost response)" if result.recovered else ""
        self._ledger.record(
            "line_submitted",
            f"sTN activation {result.activation.id} for {wish_date.isoformat()}{recovered}",
        )

    async def release(self, note: str) -> None:
        """Cancel the submitted termination before a reschedule resubmits it.

        Raises ``Refused`` when sTN could not cancel it: the old date stands.
        """
        if self.activation is not None:
            undo = await stn_steps.cancel_termination(
                CancelTermination(activation_id=self.activation.id, note=note)
            )
            self._learn(undo)
            if undo.failure is not None:
                raise Refused(f"cannot reschedule: {undo.failure}")

    def _learn(self, undo: stn_steps.Undo) -> None:
        if not undo.followed:
            return  # runs recorded before the patch did not look at the answer
        self.cancellation = undo.cancellation
        if undo.termination is not None:
            self.activation = undo.termination

    @property
    def executed(self) -> bool:
        return self.activation is not None and self.activation.is_executed

    async def undo(self, cause: str) -> None:
        activation = self.activation
        if activation is not None and activation.status == "ERROR":
            self._ledger.record("line_kept", "sTN did not terminate the line: nothing to undo")
            return
        if activation is not None and activation.is_executed:
            raise StepFailed(f"sTN already terminated the line (activation {activation.id})")
        try:
            undo = await stn_steps.cancel_termination(
                CancelTermination(
                    activation_id=activation.id if activation else None,
                    submitted=self.submission,
                    note=cause,
                )
            )
        except ActivityError as error:
            raise StepFailed(describe_failure(error)) from None
        if not undo.followed and undo.cancellation is not None:
            self.activation = undo.cancellation  # as runs recorded before the patch did
        self._learn(undo)
        if undo.failure is not None:
            # The termination stands: the line is (or will be) terminated.
            raise StepFailed(f"{undo.failure}; the line will be terminated")
        undone = undo.cancellation
        what = f"activation {undone.id} cancelled" if undone else "sTN never created one"
        self._ledger.record("line_undone", what)

    def state(self) -> StnPartState:
        activation = self.activation
        return StnPartState(
            subscription_id=self._line.subscription_id,
            phone_number=mask_phone_number(self._line.phone_number),
            reference_number=self.submission.reference_number if self.submission else None,
            activation_id=activation.id if activation else None,
            activation_status=activation.status if activation else None,
            cancellation_id=self.cancellation.id if self.cancellation else None,
            cancellation_status=self.cancellation.status if self.cancellation else None,
        )


class BillingPart(ChurnPart):
    """Rebilly: a draft cancellation for the date, confirmed only after the pivot.

    A confirmed cancellation completes (immutable) at its churn time, the moment
    sTN executes: if sTN then reported ERROR, billing could no longer be undone.
    Deleting a draft undoes it completely.
    """

    name: PartName = "rebilly"

    def __init__(self, order: OrderCancellationRequest, ledger: SagaLedger) -> None:
        super().__init__(ledger)
        self._order = order
        self._wish_date: datetime | None = None
        self.cancellation_id: str | None = None
        self.cancellation: Cancellation | None = None
        self._submissions = 0

    def _put(self, status: RebillyStatus) -> PutCancellation:
        assert self.cancellation_id is not None
        request = self._order.model_copy(update={"churn_time": self._wish_date})
        return PutCancellation(cancellation_id=self.cancellation_id, body=request.body(status))

    async def prepare(self, wish_date: datetime) -> None:
        self._wish_date = wish_date
        self._submissions += 1
        info = workflow.info()
        self.cancellation_id = derived_cancellation_id(
            info.workflow_id, info.first_execution_run_id, self._submissions
        )
        result = await rebilly_steps.put_cancellation(self._put(RebillyStatus.DRAFT))
        self.cancellation = result.cancellation
        subtotal = result.cancellation.line_item_subtotal
        proration = f"; proration {subtotal.amount} {subtotal.currency}" if subtotal else ""
        self._ledger.record(
            "billing_drafted",
            f"Rebilly draft {self.cancellation_id} for order {self._order.order_id}{proration}",
        )

    async def reschedule(self, wish_date: datetime) -> None:
        self._wish_date = wish_date
        if self.cancellation_id is not None:
            # A draft is updated in place: same id, new churn time.
            result = await rebilly_steps.put_cancellation(self._put(RebillyStatus.DRAFT))
            self.cancellation = result.cancellation

    async def undo(self, cause: str) -> None:
        assert self.cancellation_id is not None
        try:
            current = self.cancellation or await rebilly_steps.find_cancellation(
                self.cancellation_id
            )
            if current is None:
                self._ledger.record("billing_undone", "Rebilly never created the draft")
                return
            if current.status == RebillyStatus.DRAFT:
                await rebilly_steps.delete_draft(self.cancellation_id)
                self._ledger.record("billing_undone", f"draft {self.cancellation_id} deleted")
            elif current.status == RebillyStatus.CONFIRMED:
                reactivated = await rebilly_steps.reactivate_order(
                    ReactivateOrder(
                        cancellation_id=current.id, order_id=current.order_id, description=cause
                    )
                )
                self._ledger.record("billing_undone", f"order reactivated ({reactivated.outcome})")
            elif current.status == RebillyStatus.COMPLETED:
                raise StepFailed(f"Rebilly already completed cancellation {current.id}")
        except ActivityError as error:
            raise StepFailed(describe_failure(error)) from None

    async def finish(self) -> None:
        """Confirm the draft for the date and poll it to ``completed``."""
        try:
            result = await rebilly_steps.put_cancellation(self._put(RebillyStatus.CONFIRMED))
            self.cancellation = result.cancellation
            self._ledger.record("billing_confirmed", f"Rebilly cancellation {self.cancellation_id}")
            assert self.cancellation_id is not None
            checked = await rebilly_steps.await_cancellation_completed(self.cancellation_id)
        except ActivityError as error:
            raise StepFailed(f"billing could not be cancelled: {describe_failure(error)}") from None
        self.cancellation = checked.cancellation
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


class EsimPart(ChurnPart):
    """Airalo: cancel the future eSIM orders due after the date (those due before stay).

    Prepared last: its undo re-creates orders under new request ids.
    """

    name: PartName = "airalo"

    def __init__(
        self, orders: FutureOrderCancellationRequest, wish_date: datetime, ledger: SagaLedger
    ) -> None:
        super().__init__(ledger)
        self.canceller = FutureOrderCanceller(orders.request_ids, ledger, keep_due_before=wish_date)
        self.recreated: list[RecreatedFutureOrder] = []

    async def prepare(self, wish_date: datetime) -> None:
        await self.canceller.run()
        counts: dict[str, int] = {}
        for record in self.canceller.outcomes.values():
            counts[record.outcome.value] = counts.get(record.outcome.value, 0) + 1
        summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
        self._ledger.record("esims_cancelled", summary or "no orders")

    def reschedule_refusal(self, old: datetime, new: datetime) -> str | None:
        low, high = sorted((old, new))
        between = [o.request_id for o in self.canceller.orders.values() if low < o.due_date <= high]
        if not between:
            return None
        return (
            "future eSIM orders "
            + ", ".join(between)
            + " fall between the old and the new date; revoke and start a new churn"
        )

    def stop(self, cause: str) -> None:
        # No further eSIM batch; the call in flight still reports its outcome.
        self.canceller.stop(cause)

    async def undo(self, cause: str) -> None:
        already = {r.original_request_id for r in self.recreated if r.request_id}
        todo: list[FutureOrder] = [
            order for order in self.canceller.cancelled_orders() if order.request_id not in already
        ]
        unrecorded = self.canceller.cancelled_without_details()
        if not unrecorded or not patches.patched(patches.CHURN_UNRECORDED_ORDERS_OWED):
            await self._recreate(todo)
            return
        # Not silently COMPENSATED: these are owed until an operator re-creates them.
        owed = (
            "cancelled but never listed, so nothing was recorded to re-create them from: "
            + ", ".join(unrecorded)
        )
        try:
            if todo:
                await self._recreate(todo)
        except StepFailed as failed:
            raise StepFailed(f"{failed}; {owed}") from None
        raise StepFailed(owed)

    async def _recreate(self, todo: list[FutureOrder]) -> None:
        if not todo:
            self._ledger.record("esims_undone", "no cancelled eSIM order to re-create")
            return
        results = await airalo_steps.recreate_future_orders(todo)
        self.recreated = [r for r in self.recreated if r.request_id] + results
        failed = [r for r in results if r.error]
        created = ", ".join(
            f"{r.original_request_id}→{r.request_id}" for r in results if r.request_id
        )
        if created:
            self._ledger.record("esims_undone", f"re-created {created}")
        if failed:
            raise StepFailed(
                "; ".join(f"re-create {r.original_request_id}: {r.error}" for r in failed)
            )

    def state(self) -> AiraloPartState:
        return AiraloPartState(
            outcomes=list(self.canceller.outcomes.values()), recreated=list(self.recreated)
        )
