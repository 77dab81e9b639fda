"""FutureOrderCancellation: cancel Airalo future orders, each before its cut-off.

look up every order (``GET /v2/future-orders``) → refuse those past their cut-off
without a call → cancel the rest in batches of at most ten, earliest cut-off first
→ COMPLETED with one outcome per request id (FAILED only if nothing could be done).

Decision rules (one outcome and one reason per request id):

* **Lookup.** A listed order's details and ``latest_cancellation_date`` are
  recorded before anything is cancelled (the compensation re-creates an order from
  them). An order whose cut-off has passed ends ``MISSED_DEADLINE`` without a
  cancel call. IDs Airalo does not list are sent anyway: the cancel call's 422 says
  whether they do not exist (``NOT_FOUND``) or are already processed.
* **422.** Airalo rejects the whole call and names the failing indexes. Those IDs
  get their outcome (does not exist → ``NOT_FOUND``, already processed →
  ``ALREADY_PROCESSED``, past the cut-off → ``MISSED_DEADLINE``, anything else →
  ``FAILED``) and the rest of the batch is sent again, in one call.
* **Lost responses.** An ID is *uncertain* once it was in a call whose answer we
  never got: an activity that succeeded only on a later attempt, or that gave up.
  Such a call may have cancelled it. Sending it again is harmless, but a verdict
  about it is never guessed: when Airalo answers "already processed" (or "past the
  cut-off") for it, or when its cut-off has passed, the saga asks
  ``GET /v2/future-orders``:
  still listed → it still exists: send it again (or, past its cut-off,
  ``MISSED_DEADLINE``);
  not listed, seen pending at the start, due date still ahead → it cannot have
  fired (orders fire at their due date), so our lost call cancelled it →
  ``CANCELLED``;
  not listed and its due date has passed → it fired, or our lost call cancelled
  it; Airalo's webhook log tells which → ``ALREADY_PROCESSED`` with that reason;
  not listed and not listed at the start either → no call of ours can have
  cancelled it → Airalo's answer stands (``ALREADY_PROCESSED``, in its words).
  A 422 that does *not* name an ID proves that ID was still pending, and a 200
  that it is cancelled: either makes it certain again.
* **Deadline race.** A cancel call is retried until the earliest cut-off among its
  orders and no longer (``schedule_to_close``). When the call gives up with Airalo
  still failing, IDs whose cut-off has passed are settled as above and, still
  listed, end ``MISSED_DEADLINE`` with the last error; the others are sent again,
  bounded by their own later cut-off. IDs Airalo never listed have no cut-off:
  each call for them gives up after a day, and after five such calls ``FAILED``.
* **Final phase.** ``COMPLETED`` when the saga reached a verdict, even if some
  orders were not cancelled (each outcome says why); ``FAILED`` when every ID ended
  ``FAILED`` (e.g. Airalo refused our credentials or stayed unreachable).

Cancelling the workflow stops it (a call in flight is abandoned; the IDs it
carried say so); orders it already cancelled stay cancelled (re-creating them is
the churn saga's compensation, :func:`workflows.airalo_steps.recreate_future_orders`).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from domain.airalo import (
        CancelRejection,
        FutureOrder,
        FutureOrderCancellationRequest,
        FutureOrderCancellationStatus,
        OrderOutcome,
        OrderOutcomeRecord,
        RejectionKind,
        cancellation_batches,
        format_airalo_date,
        summarize_outcomes,
    )
    from domain.common import Provider, SagaKind, SagaPhase

from workflows import airalo_steps
from workflows.ledger import SagaLedger, describe_failure

# An ID Airalo did not list has no cut-off to bound its retries (each call gives
# up after a day): after this many calls without a verdict it ends FAILED.
MAX_SENDS_PER_ORDER = 5

# What a 422 says about one ID, as an outcome and a note for its reason.
VERDICTS = {
    RejectionKind.NOT_FOUND: (OrderOutcome.NOT_FOUND, ""),
    RejectionKind.ALREADY_PROCESSED: (
        OrderOutcome.ALREADY_PROCESSED,
        " (it fired, or was cancelled elsewhere)",
    ),
    RejectionKind.PAST_CUTOFF: (OrderOutcome.MISSED_DEADLINE, ""),
    RejectionKind.INVALID: (OrderOutcome.FAILED, ""),
}
# Answers that a lost call of ours could have caused (it cancelled the order, so
# Airalo now calls it processed, or checks the cut-off first): settled by lookup.
DISPUTABLE = frozenset({RejectionKind.ALREADY_PROCESSED, RejectionKind.PAST_CUTOFF})


@workflow.defn(name="FutureOrderCancellation")
class FutureOrderCancellationSaga:
    @workflow.init
    def __init__(self, request: FutureOrderCancellationRequest) -> None:
        self._request = request
        self._ledger = SagaLedger(SagaKind.FUTURE_ORDER_CANCELLATION, [Provider.AIRALO])
        self._outcomes = {
            request_id: OrderOutcomeRecord(
                request_id=request_id, outcome=OrderOutcome.PENDING, reason="not looked up yet"
            )
            for request_id in request.request_ids
        }
        self._orders: dict[str, FutureOrder] = {}
        # IDs that were in a call whose answer we never got (see the module docstring),
        # and those of them Airalo then called "already processed".
        self._uncertain: set[str] = set()
        self._disputed: dict[str, CancelRejection] = {}
        self._sends: Counter[str] = Counter()
        # The last error of a call that ran out of time, per ID (for MISSED_DEADLINE).
        self._unavailable: dict[str, str] = {}
        self._cancel_calls = 0
        self._lookups = 0

    @workflow.run
    async def run(self, request: FutureOrderCancellationRequest) -> FutureOrderCancellationStatus:
        self._ledger.open(None, request.customer_id)
        try:
            if await self._look_up():
                batches = cancellation_batches(request.request_ids, self._orders)
                for number, batch in enumerate(batches, start=1):
                    await self._cancel_batch(batch, f"batch {number}/{len(batches)}")
            self._finish()
        except BaseException as error:
            if not is_cancelled_exception(error):
                raise
            self._abandon()
            raise
        return self.status()

    # -- lookup ------------------------------------------------------------------

    async def _look_up(self) -> bool:
        ids = self._request.request_ids
        self._ledger.enter(SagaPhase.SUBMITTING, f"looking up {len(ids)} future orders at Airalo")
        self._lookups += 1
        try:
            listing = await airalo_steps.list_future_orders(ids)
        except ActivityError as error:
            reason = f"could not look the order up at Airalo: {describe_failure(error)}"
            self._ledger.note_error("lookup_failed", reason)
            for request_id in ids:
                self._settle(request_id, OrderOutcome.FAILED, reason)
            return False
        for order in listing.orders:
            self._remember(order)
        missing = len(ids) - len(listing.orders)
        self._ledger.record(
            "looked_up",
            f"{len(listing.orders)} of {len(ids)} listed ({listing.pages} page(s) read)"
            + (f"; {missing} not listed: the cancel call will say why" if missing else ""),
        )
        if listing.orders:
            self._ledger.move_wish_date(min(order.due_date for order in listing.orders))
        now = workflow.now()
        for order in listing.orders:
            if order.cutoff_passed(now):
                self._settle(
                    order.request_id,
                    OrderOutcome.MISSED_DEADLINE,
                    f"its cut-off {_utc(order.latest_cancellation_date)} (24 h before its due "
                    f"date {_utc(order.due_date)}) had passed when the saga looked it up; "
                    "Airalo no longer cancels it, so it was not sent",
                )
        return True

    def _remember(self, order: FutureOrder) -> None:
        self._orders[order.request_id] = order
        record = self._outcomes[order.request_id]
        record.latest_cancellation_date = order.latest_cancellation_date
        if not record.outcome.is_final:
            record.reason = (
                f"listed as {order.status or 'pending'}; cancellable until "
                f"{_utc(order.latest_cancellation_date)}"
            )

    # -- cancelling ----------------------------------------------------------------

    async def _cancel_batch(self, batch: list[str], label: str) -> None:
        pending = [request_id for request_id in batch if self._is_open(request_id)]
        while pending:
            # Only where a verdict depends on it: resending an uncertain ID is harmless
            # (if our lost call got through, Airalo answers "already processed").
            must_settle = [i for i in pending if i in self._disputed or self._verdict_due(i)]
            must_settle = [i for i in must_settle if i in self._uncertain]
            if must_settle:
                await self._settle_by_lookup(must_settle)
                # Time moved on while we asked: decide again, with the new facts.
                pending = [request_id for request_id in pending if self._is_open(request_id)]
                continue
            pending = self._drop_unsendable(pending)
            if not pending:
                return
            deadline = min(
                (self._orders[i].latest_cancellation_date for i in pending if i in self._orders),
                default=None,
            )
            self._cancel_calls += 1
            self._sends.update(pending)
            for request_id in pending:
                self._outcomes[request_id].outcome = OrderOutcome.CANCELLING
            until = f", retried until {_utc(deadline)}" if deadline else ""
            self._ledger.record(
                "cancel_call",
                f"{label}: call {self._cancel_calls} with {len(pending)} IDs{until}",
            )
            workflow.set_current_details(
                f"**{self._ledger.phase.value}**: {label}, cancelling {len(pending)} orders"
            )
            try:
                result = await airalo_steps.cancel_future_orders(pending, deadline)
            except ActivityError as error:
                if is_cancelled_exception(error):
                    raise  # the workflow is being cancelled: run() records it
                pending = await self._call_failed(pending, error, label)
                continue
            if result.attempt > 1:
                # An earlier attempt may have reached Airalo and lost its answer.
                self._uncertain.update(pending)
            if result.accepted:
                for request_id in pending:
                    self._settle(
                        request_id,
                        OrderOutcome.CANCELLED,
                        f"cancelled by Airalo (call {self._cancel_calls})",
                    )
                self._uncertain.difference_update(pending)
                self._ledger.record("cancelled", f"{label}: {len(pending)} cancelled")
                return
            named = {rejection.request_id for rejection in result.rejections}
            # A 422 validates every index: the IDs it does not name were still pending.
            self._uncertain.difference_update(set(pending) - named)
            for rejection in result.rejections:
                self._apply_rejection(rejection)
            for request_id in pending:
                if self._is_open(request_id):
                    self._outcomes[request_id].outcome = OrderOutcome.PENDING
            self._ledger.record(
                "rejected",
                f"{label}: Airalo refused {len(named)} of {len(pending)} IDs; "
                "nothing was cancelled, sending the rest again",
            )
            pending = [request_id for request_id in pending if self._is_open(request_id)]

    def _verdict_due(self, request_id: str) -> bool:
        """Past its cut-off, or (unlisted) sent too often: no more calls for it."""
        order = self._orders.get(request_id)
        if order is not None:
            return order.cutoff_passed(workflow.now())
        return self._sends[request_id] >= MAX_SENDS_PER_ORDER

    def _drop_unsendable(self, pending: list[str]) -> list[str]:
        """IDs past their cut-off (or unlisted ones sent too often) end here, uncalled."""
        now = workflow.now()
        sendable = []
        for request_id in pending:
            order = self._orders.get(request_id)
            if order is not None and order.cutoff_passed(now):
                cutoff = _utc(order.latest_cancellation_date)
                last_error = self._unavailable.get(request_id)
                reason = (
                    f"Airalo was unavailable until its cut-off {cutoff}: {last_error}"
                    if last_error
                    else f"its cut-off {cutoff} passed before it could be sent"
                )
                self._settle(request_id, OrderOutcome.MISSED_DEADLINE, reason)
            elif order is None and self._sends[request_id] >= MAX_SENDS_PER_ORDER:
                last_error = (
                    self._unavailable.get(request_id)
                    or self._ledger.last_error
                    or "Airalo gave no verdict"
                )
                self._settle(
                    request_id,
                    OrderOutcome.FAILED,
                    f"gave up after {MAX_SENDS_PER_ORDER} cancel calls: {last_error}",
                )
            else:
                sendable.append(request_id)
        return sendable

    async def _call_failed(self, pending: list[str], error: ActivityError, label: str) -> list[str]:
        """A cancel call ended without an answer: settle what it may have done."""
        reason = describe_failure(error)
        self._ledger.note_error("cancel_failed", f"{label}: {reason}")
        self._uncertain.update(pending)
        if airalo_steps.ran_out_of_time(error):
            # The call gave up at its deadline, the earliest cut-off (or just before
            # it, when the next retry would fall after it): the loop settles the IDs
            # past their cut-off and sends the others again.
            for request_id in pending:
                self._unavailable[request_id] = reason
                self._outcomes[request_id].outcome = OrderOutcome.PENDING
            return pending
        # A rejection of the whole call: resending cannot help.
        await self._settle_by_lookup(pending)
        for request_id in pending:
            if self._is_open(request_id):
                self._settle(request_id, OrderOutcome.FAILED, f"Airalo refused: {reason}")
        return []

    def _apply_rejection(self, rejection: CancelRejection) -> None:
        request_id = rejection.request_id
        if request_id in self._uncertain and rejection.kind in DISPUTABLE:
            # Maybe our own lost call cancelled it: the next loop asks the listing.
            self._disputed[request_id] = rejection
            self._outcomes[request_id].reason = (
                f"Airalo: {rejection.message}; an earlier call's answer was lost, "
                "checking GET /v2/future-orders"
            )
            return
        outcome, note = VERDICTS[rejection.kind]
        self._settle(request_id, outcome, f"Airalo: {rejection.message}{note}")

    async def _settle_by_lookup(self, request_ids: list[str]) -> None:
        """Decide uncertain IDs from ``GET /v2/future-orders`` (rules: module docstring)."""
        self._lookups += 1
        try:
            listing = await airalo_steps.list_future_orders(request_ids)
        except ActivityError as error:
            reason = (
                "an earlier cancel call's answer was lost and Airalo could not be asked "
                f"whether it got through: {describe_failure(error)}"
            )
            self._ledger.note_error("settle_failed", reason)
            for request_id in request_ids:
                self._settle(request_id, OrderOutcome.FAILED, reason)
            return
        listed = {order.request_id: order for order in listing.orders}
        now = workflow.now()
        verdicts = []
        for request_id in request_ids:
            self._uncertain.discard(request_id)
            disputed = self._disputed.pop(request_id, None)
            if request_id in listed:
                self._remember(listed[request_id])
                verdicts.append(f"{request_id} still listed")
                continue
            seen = self._orders.get(request_id)
            if seen is None:
                # It was not pending when we looked: our calls cannot have cancelled it.
                if disputed is not None:
                    outcome, _ = VERDICTS[disputed.kind]
                    self._settle(
                        request_id,
                        outcome,
                        f"Airalo: {disputed.message} (not listed when the saga started, "
                        "so no call of ours cancelled it)",
                    )
                    verdicts.append(f"{request_id} {outcome.value}")
                continue
            if now < seen.due_date:
                self._settle(
                    request_id,
                    OrderOutcome.CANCELLED,
                    "cancelled by a call whose answer was lost: no longer listed although "
                    f"its due date {_utc(seen.due_date)} is still ahead (settled by "
                    "GET /v2/future-orders)",
                )
                verdicts.append(f"{request_id} cancelled")
            else:
                self._settle(
                    request_id,
                    OrderOutcome.ALREADY_PROCESSED,
                    "no longer listed and its due date has passed: it fired, or a cancel "
                    "call whose answer was lost cancelled it; Airalo's webhook log tells which",
                )
                verdicts.append(f"{request_id} gone after its due date")
        self._ledger.record("settled", "; ".join(verdicts) or "nothing listed")

    # -- outcomes ------------------------------------------------------------------

    def _is_open(self, request_id: str) -> bool:
        return not self._outcomes[request_id].outcome.is_final

    def _settle(self, request_id: str, outcome: OrderOutcome, reason: str) -> None:
        record = self._outcomes[request_id]
        record.outcome = outcome
        record.reason = reason

    def _finish(self) -> None:
        for request_id in self._outcomes:
            if self._is_open(request_id):  # defensive: every path above settles its IDs
                self._settle(request_id, OrderOutcome.FAILED, "the saga ended without a verdict")
        outcomes = list(self._outcomes.values())
        summary = summarize_outcomes(outcomes)
        if all(record.outcome == OrderOutcome.FAILED for record in outcomes):
            self._ledger.fail(SagaPhase.FAILED, f"nothing could be done: {outcomes[0].reason}")
        else:
            self._ledger.enter(SagaPhase.COMPLETED, summary)

    def _abandon(self) -> None:
        """The workflow was cancelled: say what is known, call nobody."""
        for request_id, record in self._outcomes.items():
            if self._is_open(request_id):
                in_flight = record.outcome == OrderOutcome.CANCELLING or (
                    request_id in self._uncertain
                )
                self._settle(
                    request_id,
                    OrderOutcome.FAILED,
                    "the saga was cancelled before it was settled"
                    + ("; a call in flight may have cancelled it" if in_flight else ""),
                )
        cancelled = sum(r.outcome == OrderOutcome.CANCELLED for r in self._outcomes.values())
        self._ledger.enter(
            SagaPhase.REVOKED,
            f"workflow cancelled; {cancelled} order(s) cancelled before that stay cancelled",
        )

    # -- query ---------------------------------------------------------------------

    @workflow.query
    def status(self) -> FutureOrderCancellationStatus:
        return FutureOrderCancellationStatus(
            workflow_id=workflow.info().workflow_id,
            phase=self._ledger.phase,
            customer_id=self._request.customer_id,
            outcomes=[record.model_copy() for record in self._outcomes.values()],
            recorded_orders=list(self._orders.values()),
            cancel_calls=self._cancel_calls,
            lookups=self._lookups,
            last_error=self._ledger.last_error,
            steps=list(self._ledger.steps),
        )


def _utc(moment: datetime) -> str:
    """Airalo's own notation, so reasons match what Airalo's dashboard shows."""
    return f"{format_airalo_date(moment)} UTC"
