"""FutureOrderCancellation: cancel Airalo future orders, each before its cut-off.

look up every order → refuse those past their cut-off without a call → cancel the
rest in batches of at most ten, earliest cut-off first → ``COMPLETED`` with one
outcome per request id (``FAILED`` only if nothing could be done). The part is
:class:`workflows.airalo_orders.AiraloOrders` (its procedure
:class:`~workflows.airalo_canceller.FutureOrderCanceller`); a ``revoke`` stops it
and re-creates what it cancelled (``REVOKED``); cancelling the workflow stops it,
leaving what was cancelled cancelled. The rules in full: ``docs/sagas.md``.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from domain.airalo import (
        FutureOrder,
        FutureOrderCancellationRequest,
        FutureOrderCancellationStatus,
        OrderOutcome,
        summarize_outcomes,
    )
    from domain.common import (
        OperatorRequestKind,
        Provider,
        ProviderNotice,
        RevokeRequest,
        SagaKind,
        SagaPhase,
        SagaQuery,
    )

from workflows.airalo_orders import AiraloOrders
from workflows.inflight import InflightStep
from workflows.ledger import SagaLedger
from workflows.operator_inbox import OperatorRequest
from workflows.operator_updates import Revocable
from workflows.provider_notices import NoticeBoard, ReceivesNotices
from workflows.steering import RequestHandlers, Steering

REVOKE = OperatorRequestKind.REVOKE
# Why a final saga refuses a revoke (the validator's message).
NOTHING_TO_STOP = (
    ", so every order has its final outcome and no cancellation is running to stop; a "
    "revoke only stops a running saga and re-creates what it cancelled (an order "
    "cancelled since can only be ordered again at Airalo, under a new request id)"
)


# Worker Versioning: AUTO_UPGRADE, declared in workflows/versioning.py (why there).
@workflow.defn(name="FutureOrderCancellation")
class FutureOrderCancellationSaga(Revocable[FutureOrderCancellationStatus], ReceivesNotices):
    _revoke_after_end = NOTHING_TO_STOP

    @workflow.init
    def __init__(self, request: FutureOrderCancellationRequest) -> None:
        self._request = request
        self._ledger = SagaLedger(SagaKind.FUTURE_ORDER_CANCELLATION, [Provider.AIRALO])
        self._orders = AiraloOrders(request.request_ids, self._ledger, on_listed=self._listed)
        self._canceller = self._orders.canceller
        self._steering = Steering(self._ledger, status=self.status)
        self._notice_board = NoticeBoard(self._ledger)
        self._undo = InflightStep()

    def _listed(self, orders: list[FutureOrder]) -> None:
        """This saga's ``WishDate`` is the earliest due date Airalo listed."""
        if orders:
            self._ledger.move_wish_date(min(order.due_date for order in orders))

    @workflow.run
    async def run(self, request: FutureOrderCancellationRequest) -> FutureOrderCancellationStatus:
        inbox = self._steering.inbox
        if inbox.has_pending():
            # A revoke that came with the start stops the canceller before the run
            # opens (the order of commands recorded runs replay).
            self._stop_cancelling(inbox.peek())
        self._ledger.open(None, request.customer_id)
        try:
            if not self._canceller.stopping:
                ids = request.request_ids
                self._ledger.enter(
                    SagaPhase.SUBMITTING, f"looking up {len(ids)} future orders at Airalo"
                )
            # A revoke does not cancel the canceller: it stops it, and is applied after.
            stopper = asyncio.ensure_future(self._steering.when_requested(self._stop_cancelling))
            try:
                await self._canceller.run()
            finally:
                stopper.cancel()
            if inbox.has_pending():
                await self._steering.apply_pending(RequestHandlers(revoke=self._revoke))
            else:
                self._finish()
        except BaseException as error:
            if not is_cancelled_exception(error):
                raise
            if self._undo.started:
                await self._undo.settle()
            else:
                self._abandon()
            raise
        finally:
            self._steering.close()
            await self._steering.settle_outcomes()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    def _finish(self) -> None:
        outcomes = list(self._canceller.outcomes.values())
        summary = summarize_outcomes(outcomes)
        if all(record.outcome == OrderOutcome.FAILED for record in outcomes):
            self._ledger.fail(SagaPhase.FAILED, f"nothing could be done: {outcomes[0].reason}")
        else:
            self._ledger.enter(SagaPhase.COMPLETED, summary)

    def _abandon(self) -> None:
        """The workflow was cancelled: say what is known, call nobody."""
        self._canceller.abandon("the saga was cancelled before it was settled")
        cancelled = sum(
            r.outcome == OrderOutcome.CANCELLED for r in self._canceller.outcomes.values()
        )
        self._ledger.enter(
            SagaPhase.REVOKED,
            f"workflow cancelled; {cancelled} order(s) cancelled before that stay cancelled",
        )

    # -- revoke --------------------------------------------------------------------

    def _stop_cancelling(self, request: OperatorRequest) -> None:
        """A revoke came (the one request this saga takes): no further cancel call (the
        canceller settles what it started)."""
        if self._canceller.stopping:
            return
        revoke = request.payload
        note = (revoke.reason if isinstance(revoke, RevokeRequest) else None) or (
            "revoked by operator"
        )
        self._ledger.enter(
            SagaPhase.REVOKING,
            f"{note}: no further cancel call; orders already cancelled will be re-created",
        )
        self._canceller.stop(note)

    async def _revoke(self, request: RevokeRequest) -> None:
        # Already stopped, unless it ended by itself first.
        self._stop_cancelling(OperatorRequest(request))
        # Shielded: a workflow cancellation must not abandon the re-creations.
        await self._undo.run(self._recreate(request))

    async def _recreate(self, request: RevokeRequest) -> None:
        """The canceller has stopped: re-create what it cancelled, end REVOKED."""
        note = request.reason or "revoked by operator"
        canceller = self._canceller
        orders = self._orders.orders_to_recreate()
        if orders:
            self._ledger.record(
                "recreating",
                f"re-creating {len(orders)} cancelled order(s) with POST /v2/future-orders",
            )
            await self._orders.recreate(orders)
        problems = [
            f"{request_id}: no details were recorded to re-create it from"
            for request_id in canceller.cancelled_without_details()
        ]
        made = []
        for result in self._orders.recreated:
            record = canceller.outcomes[result.original_request_id]
            if result.request_id is not None:
                made.append(f"{result.original_request_id} → {result.request_id}")
                record.reason += f"; re-created by the revoke as {result.request_id}"
            else:
                problems.append(f"{result.original_request_id}: {result.error}")
                record.reason += f"; the revoke could not re-create it: {result.error}"
        if made:
            self._ledger.record("recreated", ", ".join(made))
        detail = f"{note}; {summarize_outcomes(list(canceller.outcomes.values()))}"
        detail += f"; {len(made)} cancelled order(s) re-created"
        if problems:
            self._ledger.note_undo_failure(
                "recreate_failed",
                f"{len(problems)} cancelled order(s) could not be re-created and stay "
                "cancelled: " + "; ".join(problems),
            )
            detail += f", {len(problems)} could not be and stay cancelled (see lastError)"
        self._ledger.enter(SagaPhase.REVOKED, detail)

    def _on_notice(self, notice: ProviderNotice) -> None:
        self._orders.on_notice(notice)

    # -- query ---------------------------------------------------------------------

    @workflow.query(name=SagaQuery.STATUS)
    def status(self) -> FutureOrderCancellationStatus:
        canceller = self._canceller
        return FutureOrderCancellationStatus(
            workflow_id=workflow.info().workflow_id,
            phase=self._ledger.phase,
            customer_id=self._request.customer_id,
            outcomes=[record.model_copy() for record in canceller.outcomes.values()],
            recorded_orders=list(canceller.orders.values()),
            cancel_calls=canceller.cancel_calls,
            lookups=canceller.lookups,
            last_error=self._ledger.last_error,
            steps=list(self._ledger.steps),
            jeopardy=list(self._ledger.jeopardy),
            recreated=list(self._orders.recreated),
            notices=list(self._notice_board.received),
        )
