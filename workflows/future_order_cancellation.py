"""FutureOrderCancellation: cancel Airalo future orders, each before its cut-off.

look up every order (``GET /v2/future-orders``) → refuse those past their cut-off
without a call → cancel the rest in batches of at most ten, earliest cut-off first
→ COMPLETED with one outcome per request id (FAILED only if nothing could be done).

The procedure and its decision rules (lookup, 422s, lost responses, the deadline
race) are :class:`workflows.airalo_cancellation.FutureOrderCanceller`, shared with
the customer churn saga. This workflow adds the phases, the search attributes
(``WishDate`` = the earliest due date listed), the ``status`` query and:

* **Final phase.** ``COMPLETED`` when the saga reached a verdict, even if some
  orders were not cancelled (each outcome says why); ``FAILED`` when every ID ended
  ``FAILED`` (e.g. Airalo refused our credentials or stayed unreachable).
* **revoke** (update; refused once the saga is final): ``REVOKING`` at once; no
  further cancel call is sent, a call in flight is cancelled and waited for (an
  answer it got still counts; without one, ``GET /v2/future-orders`` settles what
  it did); the IDs not cancelled end ``KEPT``. Then every order that ended
  ``CANCELLED`` is re-created from its recorded details
  (:func:`workflows.airalo_steps.recreate_future_orders`) → ``REVOKED``; the new
  request ids are in ``recreated`` and the steps. An order Airalo will not
  re-create (e.g. due in less than two days) stays cancelled: the phase is still
  ``REVOKED`` (retrying cannot help and there is nothing left to steer), but
  ``lastError``, a ``recreate_failed`` step and that order's reason say so. The
  update returns the final status.
* **Cancelling the workflow** stops it (a call in flight is cancelled; an answer it
  got still counts, otherwise its IDs say it may have cancelled them) → ``REVOKED``;
  orders already cancelled stay cancelled. A cancellation during a revoke's
  re-creations lets them finish first.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from domain.airalo import (
        FutureOrder,
        FutureOrderCancellationRequest,
        FutureOrderCancellationStatus,
        OrderOutcome,
        RecreatedFutureOrder,
        summarize_outcomes,
    )
    from domain.common import ErrorType, Provider, RevokeRequest, SagaKind, SagaPhase

from workflows import airalo_steps
from workflows.airalo_cancellation import FutureOrderCanceller
from workflows.ledger import SagaLedger


class _SagaCanceller(FutureOrderCanceller):
    """This saga's ``WishDate`` is the earliest due date Airalo listed."""

    def _on_listed(self, orders: list[FutureOrder]) -> None:
        if orders:
            self._ledger.move_wish_date(min(order.due_date for order in orders))


@workflow.defn(name="FutureOrderCancellation")
class FutureOrderCancellationSaga:
    @workflow.init
    def __init__(self, request: FutureOrderCancellationRequest) -> None:
        self._request = request
        self._ledger = SagaLedger(SagaKind.FUTURE_ORDER_CANCELLATION, [Provider.AIRALO])
        self._canceller = _SagaCanceller(request.request_ids, self._ledger)
        self._revoke: RevokeRequest | None = None
        self._undo: asyncio.Task[None] | None = None
        self._revoked = False
        self._recreated: list[RecreatedFutureOrder] = []

    @workflow.run
    async def run(self, request: FutureOrderCancellationRequest) -> FutureOrderCancellationStatus:
        self._ledger.open(None, request.customer_id)
        try:
            if self._revoke is None:
                ids = request.request_ids
                self._ledger.enter(
                    SagaPhase.SUBMITTING, f"looking up {len(ids)} future orders at Airalo"
                )
            await self._canceller.run()
            if self._revoke is None:
                self._finish()
            else:
                # Shielded: a workflow cancellation must not abandon the re-creations.
                self._undo = asyncio.ensure_future(self._recreate(self._revoke))
                await asyncio.shield(self._undo)
        except BaseException as error:
            if not is_cancelled_exception(error):
                raise
            if self._undo is not None:
                await self._undo
            else:
                self._abandon()
            raise
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

    async def _recreate(self, request: RevokeRequest) -> None:
        """The canceller has stopped: re-create what it cancelled, end REVOKED."""
        note = request.reason or "revoked by operator"
        canceller = self._canceller
        orders = canceller.cancelled_orders()
        if orders:
            self._ledger.record(
                "recreating",
                f"re-creating {len(orders)} cancelled order(s) with POST /v2/future-orders",
            )
            self._recreated = await airalo_steps.recreate_future_orders(orders)
        problems = [
            f"{request_id}: no details were recorded to re-create it from"
            for request_id, record in canceller.outcomes.items()
            if record.outcome == OrderOutcome.CANCELLED and request_id not in canceller.orders
        ]
        made = []
        for result in self._recreated:
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
            self._ledger.note_error(
                "recreate_failed",
                f"{len(problems)} cancelled order(s) could not be re-created and stay "
                "cancelled: " + "; ".join(problems),
            )
            detail += f", {len(problems)} could not be and stay cancelled (see lastError)"
        self._revoked = True
        self._ledger.enter(SagaPhase.REVOKED, detail)

    @workflow.update
    async def revoke(self, request: RevokeRequest) -> FutureOrderCancellationStatus:
        """Stop cancelling, re-create the orders already cancelled, end REVOKED."""
        phase = self._ledger.phase
        if phase.is_final:  # the saga ended between the validator and this handler
            raise _refused(f"cannot revoke: the saga ended {phase.value} first")
        self._revoke = request
        note = request.reason or "revoked by operator"
        self._ledger.enter(
            SagaPhase.REVOKING,
            f"{note}: no further cancel call; orders already cancelled will be re-created",
        )
        self._canceller.stop(note)
        await workflow.wait_condition(lambda: self._ledger.phase.is_final)
        if not self._revoked:
            raise _refused(
                f"the revoke was not applied: the saga ended {self._ledger.phase.value} "
                "(the workflow was cancelled meanwhile)"
            )
        return self.status()

    @revoke.validator
    def _validate_revoke(self, request: RevokeRequest) -> None:
        phase = self._ledger.phase
        if phase.is_final:
            raise ValueError(
                f"cannot revoke: the saga is already {phase.value}, so every order has its "
                "final outcome and no cancellation is running to stop; a revoke only "
                "stops a running saga and re-creates what it cancelled (an order cancelled "
                "since can only be ordered again at Airalo, under a new request id)"
            )
        if self._revoke is not None:
            raise ValueError("cannot revoke: a revoke is already being applied")

    # -- query ---------------------------------------------------------------------

    @workflow.query
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
            recreated=list(self._recreated),
        )


def _refused(reason: str) -> ApplicationError:
    return ApplicationError(reason, type=ErrorType.REQUEST_REFUSED, non_retryable=True)
