"""OrderCancellation: cancel one Rebilly order, durably, at its churn time.

PUT /order-cancellations/{our id} (confirmed, or a draft in preview mode) →
[preview: report the proration, wait for ``confirm`` or ``revoke``] → durable
timer until the churn time Rebilly resolved → poll GET until ``completed`` →
COMPLETED.

While it waits an operator can ``revoke`` (a draft is deleted, a confirmed
cancellation undone with POST /order-reactivations → REVOKED) or
``reschedule`` (revoke + a new cancellation with the new churn time);
cancelling the workflow undoes what exists the same way. A ``completed``
cancellation cannot be undone: once Rebilly completed it, revoke is refused
with that reason. What Rebilly is asked and how its answers are read is the part,
:class:`workflows.rebilly_billing.RebillyBilling`; this saga decides what they mean.
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
    from domain.rebilly import (
        Cancellation,
        OrderCancellationRequest,
        OrderCancellationStatus,
        RebillyStatus,
    )

from workflows.inflight import InflightStep
from workflows.ledger import SagaLedger, describe_failure
from workflows.operator_inbox import ConfirmRequest
from workflows.operator_updates import Reschedulable
from workflows.provider_notices import NoticeBoard, ReceivesNotices
from workflows.rebilly_billing import CompletedAtRebilly, RebillyBilling, when
from workflows.steering import Refused, RequestHandlers, Steering

CONFIRM = OperatorRequestKind.CONFIRM
REVOKE, RESCHEDULE = OperatorRequestKind.REVOKE, OperatorRequestKind.RESCHEDULE


# Worker Versioning: AUTO_UPGRADE, declared in workflows/versioning.py (why there).
@workflow.defn(name="OrderCancellation")
class OrderCancellationSaga(Reschedulable[OrderCancellationStatus], ReceivesNotices):
    @workflow.init
    def __init__(self, request: OrderCancellationRequest) -> None:
        self._request = request
        self._wish_date: datetime | None = request.churn_time
        self._ledger = SagaLedger(SagaKind.ORDER_CANCELLATION, [Provider.REBILLY])
        self._steering = Steering(self._ledger, status=self.status)
        # A reactivation Rebilly reports while ours waits is shown, never acted on:
        # the poll learns what it did to our cancellation.
        self._notice_board = NoticeBoard(self._ledger)
        self._billing = RebillyBilling(request, self._ledger, on_churn_time=self._show_churn_time)
        self._put_step = InflightStep()

    @workflow.run
    async def run(self, request: OrderCancellationRequest) -> OrderCancellationStatus:
        self._ledger.open(self._wish_date, request.customer_id)
        await self._steering.run(self._steps, compensate=self._compensate)
        return self.status()

    # -- the main loop -------------------------------------------------------

    @property
    def _awaiting_confirmation(self) -> bool:
        return self._billing.status == RebillyStatus.DRAFT

    async def _steps(self) -> None:
        """Put, then wait and poll until final; operator requests between steps."""
        status = RebillyStatus.DRAFT if self._request.draft else RebillyStatus.CONFIRMED
        await self._put(status, new_id=True)
        await self._steering.drive(
            self._advance,
            RequestHandlers(
                confirm=self._confirm, revoke=self._revoke, reschedule=self._reschedule
            ),
        )

    async def _advance(self) -> None:
        if self._awaiting_confirmation:
            await self._steering.wait_for_request()
        else:
            cancellation = self._billing.cancellation
            await self._steering.wait_then_poll(
                self._poll,
                due=cancellation.churn_time if cancellation else None,
                reached="churn time reached; waiting for Rebilly to complete",
            )

    def _show_churn_time(self, churn_time: datetime) -> None:
        """Rebilly's churn time is the saga's wish date (``WishDate``)."""
        if churn_time != self._wish_date:
            self._wish_date = churn_time
            self._ledger.move_wish_date(churn_time)

    async def _put(self, status: RebillyStatus, *, new_id: bool) -> None:
        """Create (or, for a draft, update) the cancellation at Rebilly."""
        put = self._billing.new_put(status, new_id=new_id)
        self._ledger.enter(
            SagaPhase.SUBMITTING,
            f"asking Rebilly for {status.value} cancellation {put.cancellation_id}",
        )
        # A workflow cancellation lets an in-flight PUT finish, so the
        # compensation knows exactly what there is to undo.
        await self._put_step.run(self._send())
        assert self._billing.cancellation is not None
        self._after_put(self._billing.cancellation)

    async def _send(self) -> None:
        assert self._billing.pending_put is not None
        result = await self._billing.send(self._billing.pending_put)
        recovered = " (found after a lost response)" if result.recovered else ""
        self._ledger.record(
            "submitted",
            f"cancellation {result.cancellation.id} is {result.cancellation.status.value}"
            f"{recovered}; {'created' if result.created else 'not created anew'}; "
            f"attempt {result.attempt}",
        )

    def _after_put(self, cancellation: Cancellation) -> None:
        churn = when(cancellation.churn_time)
        if cancellation.status == RebillyStatus.DRAFT:
            self._steering.scheduled(
                f"draft {cancellation.id} would churn at {churn}, subtotal "
                f"{_money(cancellation)}; waiting for confirm or revoke"
            )
        elif cancellation.status == RebillyStatus.CONFIRMED:
            self._steering.scheduled(
                f"cancellation {cancellation.id} confirmed; churns at {churn}",
                effective=cancellation.churn_time,
            )
        else:
            # Rebilly answered completed (churn now) or revoked: that is the outcome.
            self._settle(cancellation)

    async def _poll(self) -> None:
        final = await self._steering.poll_interruptibly(
            self._billing.await_completed(),
            still_pending="Rebilly has not completed after a day; polling",
        )
        if final is not None:
            self._settle(final)

    def _settle(self, cancellation: Cancellation) -> None:
        """Record a final Rebilly status as the saga's outcome."""
        if cancellation.status == RebillyStatus.COMPLETED:
            self._ledger.enter(
                SagaPhase.COMPLETED,
                f"Rebilly completed cancellation {cancellation.id}; order "
                f"{cancellation.order_id} churned at {when(cancellation.churn_time)}",
            )
        elif cancellation.status == RebillyStatus.REVOKED:
            self._ledger.enter(
                SagaPhase.REVOKED, f"cancellation {cancellation.id} was revoked at Rebilly"
            )

    # -- undoing ---------------------------------------------------------------

    async def _compensate(self, reason: str) -> None:
        """Undo what exists at Rebilly after a workflow cancellation."""
        self._ledger.enter(SagaPhase.COMPENSATING, reason)
        await self._put_step.settle()
        if self._billing.pending_put is not None:
            # A PUT that failed without telling us its outcome: ask Rebilly.
            try:
                await self._billing.find()
            except ActivityError as error:
                self._ledger.fail(
                    SagaPhase.FAILED,
                    f"{reason}; could not check Rebilly: {describe_failure(error)}",
                )
                return
        try:
            what = await self._billing.withdraw(reason)
        except CompletedAtRebilly as late:
            # Too late: Rebilly completed it. Report what happened.
            self._settle(late.cancellation)
            return
        except ActivityError as error:
            self._ledger.fail(
                SagaPhase.FAILED, f"{reason}; could not undo: {describe_failure(error)}"
            )
            return
        self._ledger.enter(SagaPhase.REVOKED, f"{reason}; {what}")

    # -- operator requests ---------------------------------------------------

    async def _confirm(self, _: ConfirmRequest) -> None:
        previous = self._ledger.phase
        try:
            await self._put(RebillyStatus.CONFIRMED, new_id=False)
        except ActivityError as error:
            self._ledger.note_error("confirm_refused", describe_failure(error))
            self._ledger.enter(previous, "confirm refused; still a draft")
            raise

    async def _revoke(self, request: RevokeRequest) -> None:
        previous = self._ledger.phase
        note = request.reason or "revoked by operator"
        self._ledger.enter(SagaPhase.REVOKING, note)
        what = await self._withdraw(REVOKE, note, previous, "revoke refused; carrying on")
        self._ledger.enter(SagaPhase.REVOKED, f"{note} ({what})")

    async def _reschedule(self, request: RescheduleRequest) -> None:
        previous = self._ledger.phase
        new_time = request.wish_date
        self._ledger.enter(
            SagaPhase.RESCHEDULING, f"moving the churn time to {new_time.isoformat()}"
        )
        billing = self._billing
        old_time, old_policy = billing.churn_time, billing.churn_time_policy
        if self._awaiting_confirmation:
            # A draft can simply be updated in place.
            billing.churn_time, billing.churn_time_policy = new_time, None
            try:
                await self._put(RebillyStatus.DRAFT, new_id=False)
            except ActivityError as error:
                billing.churn_time, billing.churn_time_policy = old_time, old_policy
                self._ledger.note_error("reschedule_refused", describe_failure(error))
                self._ledger.enter(previous, "reschedule refused; draft unchanged")
                raise
            return
        note = f"rescheduled to {new_time.isoformat()}"
        await self._withdraw(RESCHEDULE, note, previous, "reschedule refused; carrying on")
        billing.churn_time, billing.churn_time_policy = new_time, None
        try:
            await self._put(RebillyStatus.CONFIRMED, new_id=True)
        except ActivityError as error:
            # The old cancellation is revoked and Rebilly refused the new one: say so loudly.
            self._ledger.fail(
                SagaPhase.FAILED,
                f"new cancellation after reschedule failed: {describe_failure(error)}",
            )
            raise

    async def _withdraw(
        self, kind: OperatorRequestKind, note: str, previous: SagaPhase, refused: str
    ) -> str:
        """Undo the cancellation for an operator request; what was done.

        Completed at Rebilly: the saga ends COMPLETED and the request is refused
        with why. Refused by Rebilly: the saga carries on where it was.
        """
        try:
            return await self._billing.withdraw(note)
        except CompletedAtRebilly as late:
            self._settle(late.cancellation)
            raise Refused(f"cannot {kind}: {late}") from None
        except ActivityError as error:
            self._ledger.note_error(f"{kind}_refused", describe_failure(error))
            self._ledger.enter(previous, refused)
            raise

    # -- handlers --------------------------------------------------------------

    @workflow.update(name=CONFIRM, description="Confirm the draft preview as the cancellation")
    async def confirm(self) -> OrderCancellationStatus:
        return await self._steer(ConfirmRequest())

    @confirm.validator
    def _validate_confirm(self) -> None:
        self._steering.refuse_if_settled(CONFIRM, too_late=self._provider_acted())
        if not self._awaiting_confirmation:
            state = self._billing.status.value if self._billing.status else "not created yet"
            raise ValueError(f"cannot confirm: only a draft can be confirmed (this one is {state})")

    def _provider_acted(self) -> str | None:
        cancellation = self._billing.cancellation
        if cancellation is not None and cancellation.status == RebillyStatus.COMPLETED:
            return str(CompletedAtRebilly(cancellation, answered_reactivation=False))
        return None

    @workflow.query(name=SagaQuery.STATUS)
    def status(self) -> OrderCancellationStatus:
        billing = self._billing
        cancellation = billing.cancellation
        return OrderCancellationStatus(
            workflow_id=workflow.info().workflow_id,
            phase=self._ledger.phase,
            order_id=self._request.order_id,
            customer_id=self._request.customer_id,
            draft=self._request.draft,
            awaiting_confirmation=self._awaiting_confirmation,
            cancellation_id=billing.cancellation_id,
            rebilly_status=billing.status,
            churn_time_policy=billing.churn_time_policy,
            churn_time=cancellation.churn_time if cancellation else billing.churn_time,
            prorated=self._request.prorated,
            line_item_subtotal=cancellation.line_item_subtotal if cancellation else None,
            submissions=billing.submissions,
            provider_checks=billing.provider_checks,
            last_error=self._ledger.last_error,
            steps=list(self._ledger.steps),
            jeopardy=list(self._ledger.jeopardy),
            notices=list(self._notice_board.received),
        )


def _money(cancellation: Cancellation) -> str:
    subtotal = cancellation.line_item_subtotal
    return f"{subtotal.amount:.2f} {subtotal.currency}" if subtotal else "not reported"
