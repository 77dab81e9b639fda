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
with that reason.
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
    from domain.rebilly import (
        Cancellation,
        CancellationBody,
        ChurnTimePolicy,
        OrderCancellationRequest,
        OrderCancellationStatus,
        PutCancellation,
        ReactivateOrder,
        ReactivationOutcome,
        RebillyStatus,
        derived_cancellation_id,
    )

from workflows import rebilly_steps
from workflows.inflight import InflightStep
from workflows.ledger import SagaLedger, describe_failure
from workflows.operator_updates import Reschedulable
from workflows.provider_notices import NoticeBoard, ReceivesNotices
from workflows.steering import Refused, Steering

CONFIRM = OperatorRequestKind.CONFIRM
REVOKE, RESCHEDULE = OperatorRequestKind.REVOKE, OperatorRequestKind.RESCHEDULE


class _TooLate(Exception):
    """Rebilly already completed the cancellation: nothing can undo it."""

    def __init__(self, cancellation: Cancellation) -> None:
        self.cancellation = cancellation
        super().__init__(f"Rebilly already completed cancellation {cancellation.id}")


@workflow.defn(name="OrderCancellation")
class OrderCancellationSaga(Reschedulable[OrderCancellationStatus], ReceivesNotices):
    @workflow.init
    def __init__(self, request: OrderCancellationRequest) -> None:
        self._request = request
        self._churn_time: datetime | None = request.churn_time
        self._churn_time_policy: ChurnTimePolicy | None = request.churn_time_policy
        self._wish_date: datetime | None = request.churn_time
        self._ledger = SagaLedger(SagaKind.ORDER_CANCELLATION, [Provider.REBILLY])
        self._steering = Steering(self._ledger)
        # A reactivation Rebilly reports while ours waits is shown, never acted on:
        # the poll learns what it did to our cancellation.
        self._notice_board = NoticeBoard(self._ledger)
        self._submissions = 0
        self._cancellation_id: str | None = None
        # The last state Rebilly reported (None: not created yet, or a deleted draft).
        self._cancellation: Cancellation | None = None
        # A PUT whose outcome the saga has not learned yet.
        self._pending_put: PutCancellation | None = None
        self._put_step = InflightStep()
        self._provider_checks = 0

    @workflow.run
    async def run(self, request: OrderCancellationRequest) -> OrderCancellationStatus:
        self._ledger.open(self._wish_date, request.customer_id)
        try:
            status = RebillyStatus.DRAFT if request.draft else RebillyStatus.CONFIRMED
            await self._put(status, new_id=True)
            await self._drive()
        except ActivityError as error:
            self._ledger.fail(SagaPhase.FAILED, describe_failure(error))
        except BaseException as error:
            if not is_cancelled_exception(error):
                raise
            # Undo even though we are being cancelled: shield the compensation.
            await asyncio.shield(asyncio.ensure_future(self._compensate("workflow cancelled")))
            raise
        finally:
            self._steering.close()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    # -- the main loop -------------------------------------------------------

    @property
    def _awaiting_confirmation(self) -> bool:
        return self._cancellation is not None and self._cancellation.status == RebillyStatus.DRAFT

    async def _drive(self) -> None:
        """Wait, then poll, until final; operator requests are applied between steps."""
        await self._steering.drive(
            self._advance,
            {CONFIRM: self._confirm, REVOKE: self._revoke, RESCHEDULE: self._reschedule},
        )

    async def _advance(self) -> None:
        if self._awaiting_confirmation:
            await self._steering.wait_for_request()
        else:
            await self._steering.wait_then_poll(
                self._poll,
                due=self._cancellation.churn_time if self._cancellation else None,
                reached="churn time reached; waiting for Rebilly to complete",
            )

    def _body(self, status: RebillyStatus) -> CancellationBody:
        body = self._request.body(status)
        body.churn_time = self._churn_time
        body.churn_time_policy = self._churn_time_policy
        return body

    async def _put(self, status: RebillyStatus, *, new_id: bool) -> None:
        """Create (or, for a draft, update) the cancellation at Rebilly."""
        if new_id or self._cancellation_id is None:
            self._submissions += 1
            info = workflow.info()
            self._cancellation_id = derived_cancellation_id(
                info.workflow_id, info.first_execution_run_id, self._submissions
            )
        put = PutCancellation(cancellation_id=self._cancellation_id, body=self._body(status))
        self._pending_put = put
        self._ledger.enter(
            SagaPhase.SUBMITTING,
            f"asking Rebilly for {status.value} cancellation {put.cancellation_id}",
        )
        # A workflow cancellation lets an in-flight PUT finish, so the
        # compensation knows exactly what there is to undo.
        await self._put_step.run(self._send_put(put))
        assert self._cancellation is not None
        self._after_put(self._cancellation)

    async def _send_put(self, put: PutCancellation) -> None:
        result = await rebilly_steps.put_cancellation(put)
        self._pending_put = None
        self._learn(result.cancellation)
        recovered = " (found after a lost response)" if result.recovered else ""
        self._ledger.record(
            "submitted",
            f"cancellation {result.cancellation.id} is {result.cancellation.status.value}"
            f"{recovered}; {'created' if result.created else 'not created anew'}; "
            f"attempt {result.attempt}",
        )

    def _after_put(self, cancellation: Cancellation) -> None:
        churn = _when(cancellation.churn_time)
        if cancellation.status == RebillyStatus.DRAFT:
            self._ledger.enter(
                SagaPhase.WAITING,
                f"draft {cancellation.id} would churn at {churn}, subtotal "
                f"{_money(cancellation)}; waiting for confirm or revoke",
            )
        elif cancellation.status == RebillyStatus.CONFIRMED:
            self._ledger.enter(
                SagaPhase.WAITING, f"cancellation {cancellation.id} confirmed; churns at {churn}"
            )
        else:
            # Rebilly answered completed (churn now) or revoked: that is the outcome.
            self._settle(cancellation)

    def _learn(self, cancellation: Cancellation) -> None:
        """Keep Rebilly's latest word, and show its churn time as the wish date."""
        self._cancellation = cancellation
        if cancellation.churn_time is not None and cancellation.churn_time != self._wish_date:
            self._wish_date = cancellation.churn_time
            self._ledger.move_wish_date(cancellation.churn_time)

    async def _poll(self) -> None:
        assert self._cancellation_id is not None
        checked = await self._steering.poll_interruptibly(
            rebilly_steps.await_cancellation_completed(self._cancellation_id),
            still_pending="Rebilly has not completed after a day; polling",
        )
        if checked is None:
            return
        self._provider_checks += checked.checks
        self._settle(checked.cancellation)

    def _settle(self, cancellation: Cancellation) -> None:
        """Record a final Rebilly status as the saga's outcome."""
        self._learn(cancellation)
        if cancellation.status == RebillyStatus.COMPLETED:
            self._ledger.enter(
                SagaPhase.COMPLETED,
                f"Rebilly completed cancellation {cancellation.id}; order "
                f"{cancellation.order_id} churned at {_when(cancellation.churn_time)}",
            )
        elif cancellation.status == RebillyStatus.REVOKED:
            self._ledger.enter(
                SagaPhase.REVOKED, f"cancellation {cancellation.id} was revoked at Rebilly"
            )

    # -- undoing ---------------------------------------------------------------

    async def _undo(self, note: str) -> str:
        """Undo our cancellation: delete a draft, reactivate a confirmed one.

        Returns what was done; raises ``_TooLate`` if Rebilly completed it.
        """
        cancellation = self._cancellation
        if cancellation is None:
            return "nothing to undo"
        if cancellation.status == RebillyStatus.COMPLETED:
            raise _TooLate(cancellation)
        if cancellation.status == RebillyStatus.REVOKED:
            return f"cancellation {cancellation.id} was already revoked"
        if cancellation.status == RebillyStatus.DRAFT:
            deleted = await rebilly_steps.delete_draft(cancellation.id)
            self._cancellation = None
            gone = " (already gone)" if deleted.already_gone else ""
            return f"draft {cancellation.id} deleted{gone}"
        reactivated = await rebilly_steps.reactivate_order(
            ReactivateOrder(
                cancellation_id=cancellation.id, order_id=cancellation.order_id, description=note
            )
        )
        self._learn(reactivated.cancellation)
        if reactivated.outcome == ReactivationOutcome.ALREADY_COMPLETED:
            raise _TooLate(reactivated.cancellation)
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

    async def _compensate(self, reason: str) -> None:
        """Undo what exists at Rebilly after a workflow cancellation."""
        self._ledger.enter(SagaPhase.COMPENSATING, reason)
        await self._put_step.settle()
        if self._pending_put is not None:
            # A PUT that failed without telling us its outcome: ask Rebilly.
            try:
                found = await rebilly_steps.find_cancellation(self._pending_put.cancellation_id)
            except ActivityError as error:
                self._ledger.fail(
                    SagaPhase.FAILED,
                    f"{reason}; could not check Rebilly: {describe_failure(error)}",
                )
                return
            self._pending_put = None
            if found is not None:
                self._learn(found)
        try:
            what = await self._undo(reason)
        except _TooLate as late:
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

    async def _confirm(self, _: None = None) -> None:
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
        try:
            what = await self._undo(note)
        except _TooLate as late:
            self._settle(late.cancellation)
            raise Refused(f"cannot {REVOKE}: {_too_late(late.cancellation)}") from None
        except ActivityError as error:
            self._ledger.note_error("revoke_refused", describe_failure(error))
            self._ledger.enter(previous, "revoke refused; carrying on")
            raise
        self._ledger.enter(SagaPhase.REVOKED, f"{note} ({what})")

    async def _reschedule(self, request: RescheduleRequest) -> None:
        previous = self._ledger.phase
        new_time = request.wish_date
        self._ledger.enter(
            SagaPhase.RESCHEDULING, f"moving the churn time to {new_time.isoformat()}"
        )
        old_time, old_policy = self._churn_time, self._churn_time_policy
        if self._awaiting_confirmation:
            # A draft can simply be updated in place.
            self._churn_time, self._churn_time_policy = new_time, None
            try:
                await self._put(RebillyStatus.DRAFT, new_id=False)
            except ActivityError as error:
                self._churn_time, self._churn_time_policy = old_time, old_policy
                self._ledger.note_error("reschedule_refused", describe_failure(error))
                self._ledger.enter(previous, "reschedule refused; draft unchanged")
                raise
            return
        try:
            await self._undo(f"rescheduled to {new_time.isoformat()}")
        except _TooLate as late:
            self._settle(late.cancellation)
            raise Refused(f"cannot {RESCHEDULE}: {_too_late(late.cancellation)}") from None
        except ActivityError as error:
            self._ledger.note_error("reschedule_refused", describe_failure(error))
            self._ledger.enter(previous, "reschedule refused; carrying on")
            raise
        self._churn_time, self._churn_time_policy = new_time, None
        try:
            await self._put(RebillyStatus.CONFIRMED, new_id=True)
        except ActivityError as error:
            # The old cancellation is revoked and Rebilly refused the new one: say so loudly.
            self._ledger.fail(
                SagaPhase.FAILED,
                f"new cancellation after reschedule failed: {describe_failure(error)}",
            )
            raise

    # -- handlers --------------------------------------------------------------

    @workflow.update(name=CONFIRM, description="Confirm the draft preview as the cancellation")
    async def confirm(self) -> OrderCancellationStatus:
        return await self._steer(CONFIRM)

    @confirm.validator
    def _validate_confirm(self) -> None:
        self._steering.refuse_if_settled(CONFIRM, too_late=self._provider_acted())
        if not self._awaiting_confirmation:
            state = self._cancellation.status.value if self._cancellation else "not created yet"
            raise ValueError(f"cannot confirm: only a draft can be confirmed (this one is {state})")

    def _provider_acted(self) -> str | None:
        cancellation = self._cancellation
        if cancellation is not None and cancellation.status == RebillyStatus.COMPLETED:
            return _too_late(cancellation)
        return None

    @workflow.query(name=SagaQuery.STATUS)
    def status(self) -> OrderCancellationStatus:
        cancellation = self._cancellation
        return OrderCancellationStatus(
            workflow_id=workflow.info().workflow_id,
            phase=self._ledger.phase,
            order_id=self._request.order_id,
            customer_id=self._request.customer_id,
            draft=self._request.draft,
            awaiting_confirmation=self._awaiting_confirmation,
            cancellation_id=self._cancellation_id,
            rebilly_status=cancellation.status if cancellation else None,
            churn_time_policy=self._churn_time_policy,
            churn_time=cancellation.churn_time if cancellation else self._churn_time,
            prorated=self._request.prorated,
            line_item_subtotal=cancellation.line_item_subtotal if cancellation else None,
            submissions=self._submissions,
            provider_checks=self._provider_checks,
            last_error=self._ledger.last_error,
            steps=list(self._ledger.steps),
            notices=list(self._notice_board.received),
        )


def _when(moment: datetime | None) -> str:
    return moment.isoformat() if moment is not None else "a time Rebilly did not report"


def _money(cancellation: Cancellation) -> str:
    subtotal = cancellation.line_item_subtotal
    return f"{subtotal.amount:.2f} {subtotal.currency}" if subtotal else "not reported"


def _too_late(cancellation: Cancellation) -> str:
    return (
        f"Rebilly already completed cancellation {cancellation.id} "
        f"(order churned at {_when(cancellation.churn_time)}); a completed cancellation "
        "cannot be undone"
    )
