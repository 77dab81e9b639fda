"""Cancel Airalo future orders, each before its cut-off: the procedure, shared.

:class:`FutureOrderCanceller` looks every order up, keeps those due at or before
``keep_due_before`` and refuses those past their cut-off without a call, cancels
the rest in batches of at most ten (earliest cut-off first) and gives one outcome
per request id. It is run by the FutureOrderCancellation saga and by the customer
churn; it records its steps on the saga's ledger and never changes the saga's
phase. Its decision rules (422s, lost responses settled by lookup, the deadline
race, stopping) are in ``docs/sagas.md``, section "FutureOrderCanceller".
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from domain import outcomes
    from domain.airalo import (
        CancelFutureOrdersResult,
        CancelRejection,
        FutureOrder,
        FutureOrdersListed,
        OrderOutcome,
        OrderOutcomeRecord,
        RejectionKind,
        cancellation_batches,
        format_airalo_date,
    )
    from domain.lanes import before_deadline
    from domain.outcomes import JeopardyCause

from workflows import airalo_steps, patches
from workflows.ledger import SagaLedger, describe_failure
from workflows.provider_calls import CALL_RETRY

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


class FutureOrderCanceller:
    """Cancel ``request_ids`` at Airalo (rules: ``docs/sagas.md``). Workflow code only.

    ``keep_due_before``: orders due at or before this moment are not cancelled
    (``KEPT``); ``None`` cancels every order. ``on_listed``: told the listed orders
    once, right after the first lookup, before any cancel call.
    """

    def __init__(
        self,
        request_ids: Sequence[str],
        ledger: SagaLedger,
        *,
        keep_due_before: datetime | None = None,
        on_listed: Callable[[list[FutureOrder]], None] | None = None,
    ) -> None:
        self._request_ids = list(request_ids)
        self._ledger = ledger
        self._keep_due_before = keep_due_before
        self._on_listed = on_listed
        self.outcomes: dict[str, OrderOutcomeRecord] = {
            request_id: OrderOutcomeRecord(
                request_id=request_id, outcome=OrderOutcome.PENDING, reason="not looked up yet"
            )
            for request_id in self._request_ids
        }
        # Details as Airalo listed them, recorded before anything is cancelled.
        self.orders: dict[str, FutureOrder] = {}
        self.cancel_calls = 0
        self.lookups = 0
        # IDs that were in a call whose answer we never got (``docs/sagas.md``),
        # and those of them Airalo then called "already processed".
        self._uncertain: set[str] = set()
        self._disputed: dict[str, CancelRejection] = {}
        # IDs a 422 did not name: looked up before they are sent again.
        self._unverified: set[str] = set()
        # IDs Airalo's webhook reported fired (processed), with when, if it said.
        self._fired: dict[str, datetime | None] = {}
        self._sends: Counter[str] = Counter()
        # The last error of a call that ran out of time, per ID (for MISSED_DEADLINE).
        self._unavailable: dict[str, str] = {}
        self._last_error: str | None = None
        self._stop_reason: str | None = None
        self._call: asyncio.Task[CancelFutureOrdersResult] | None = None

    # -- the interface -------------------------------------------------------------

    async def run(self) -> None:
        """Look up, cancel batch by batch, settle: every ID has a final outcome after."""
        if self._stop_reason is None and await self._look_up():
            batches = cancellation_batches(
                [i for i in self._request_ids if self.outcomes[i].outcome != OrderOutcome.KEPT],
                self.orders,
            )
            for number, batch in enumerate(batches, start=1):
                if self._stop_reason is not None:
                    break
                await self._cancel_batch(batch, f"batch {number}/{len(batches)}")
        if self._stop_reason is not None:
            await self._wind_down(self._stop_reason)
        for request_id in self.outcomes:
            if self._is_open(request_id):  # defensive: every path above settles its IDs
                self._settle(request_id, OrderOutcome.FAILED, "the saga ended without a verdict")

    def stop(self, reason: str) -> None:
        """Send no further cancel call; ``run()`` settles what it started and returns.

        A call in flight is cancelled (and its outcome still learnt); IDs not
        cancelled end ``KEPT`` with ``reason``. Safe to call from an update handler.
        """
        if self._stop_reason is not None:
            return
        self._stop_reason = reason
        if self._call is not None and not self._call.done():
            self._call.cancel()

    @property
    def stopping(self) -> bool:
        return self._stop_reason is not None

    def cancelled_orders(self) -> list[FutureOrder]:
        """Recorded details of the orders that ended ``CANCELLED`` (what to re-create)."""
        return [
            self.orders[request_id]
            for request_id, record in self.outcomes.items()
            if record.outcome == OrderOutcome.CANCELLED and request_id in self.orders
        ]

    def cancelled_without_details(self) -> list[str]:
        """IDs that ended ``CANCELLED`` although Airalo never listed them: nothing
        was recorded to re-create them from (a listing can miss an order)."""
        return [
            request_id
            for request_id, record in self.outcomes.items()
            if record.outcome == OrderOutcome.CANCELLED and request_id not in self.orders
        ]

    def abandon(self, reason: str) -> None:
        """The run was cancelled: settle every ID still open as ``FAILED``, calling nobody."""
        for request_id, record in self.outcomes.items():
            if self._is_open(request_id):
                in_flight = record.outcome == OrderOutcome.CANCELLING or (
                    request_id in self._uncertain
                )
                self._settle(
                    request_id,
                    OrderOutcome.FAILED,
                    reason + ("; a call in flight may have cancelled it" if in_flight else ""),
                )

    @property
    def last_error(self) -> str | None:
        """The last error this canceller noted (the ledger's may be another step's)."""
        return self._last_error

    def note_fired(self, request_id: str, at: datetime | None) -> None:
        """Airalo's webhook says this order fired: it can no longer be cancelled.

        The only documented way to tell "fired" from "cancelled". An order in a
        call right now is settled when the call's answer is applied.
        """
        record = self.outcomes.get(request_id)
        if record is None:
            return
        self._fired[request_id] = at
        fired = _fired_reason(at)
        if record.outcome == OrderOutcome.CANCELLED:
            self._note_error(
                "fired_after_cancelled",
                f"Airalo reports {request_id} {fired}, although it was recorded cancelled",
            )
        elif record.outcome == OrderOutcome.ALREADY_PROCESSED:
            record.reason = f"{fired}; it can no longer be cancelled"
        elif record.outcome == OrderOutcome.PENDING:
            self._settle(request_id, OrderOutcome.ALREADY_PROCESSED, f"{fired}; not cancelled")

    # -- lookup ------------------------------------------------------------------

    async def _list(
        self, request_ids: list[str], *, step: str, failure: str
    ) -> FutureOrdersListed | None:
        """One ``GET /v2/future-orders``; if it fails, these IDs end ``FAILED``: ``failure``."""
        self.lookups += 1
        # Known cut-offs (a settling lookup) make it as urgent as the earliest of them.
        cutoffs = [self.orders[i].latest_cancellation_date for i in request_ids if i in self.orders]
        urgency = before_deadline(min(cutoffs, default=None), workflow.now())
        try:
            return await airalo_steps.list_future_orders(request_ids, urgency=urgency)
        except ActivityError as error:
            if is_cancelled_exception(error):
                raise
            reason = f"{failure}: {describe_failure(error)}"
            self._note_error(step, reason)
            for request_id in request_ids:
                self._settle(request_id, OrderOutcome.FAILED, reason)
            return None

    async def _look_up(self) -> bool:
        ids = self._request_ids
        listing = await self._list(
            ids, step="lookup_failed", failure="could not look the order up at Airalo"
        )
        if listing is None:
            return False
        for order in listing.orders:
            self._remember(order)
        keep = self._keep_due_before
        kept = [order for order in listing.orders if keep is not None and order.due_by(keep)]
        missing = len(ids) - len(listing.orders)
        self._ledger.record(
            "looked_up",
            f"{len(listing.orders)} of {len(ids)} listed ({listing.pages} page(s) read)"
            + (f"; {missing} not listed: the cancel call will say why" if missing else "")
            + (f"; {len(kept)} due at or before {_utc(keep)}: kept" if kept and keep else ""),
        )
        if self._on_listed is not None:
            self._on_listed(listing.orders)
        for order in kept:
            assert keep is not None
            self._settle(
                order.request_id,
                OrderOutcome.KEPT,
                f"due {_utc(order.due_date)}, at or before the churn date {_utc(keep)}; "
                "left in place",
            )
        now = workflow.now()
        for order in listing.orders:
            if self._is_open(order.request_id) and order.cutoff_passed(now):
                self._settle(
                    order.request_id,
                    OrderOutcome.MISSED_DEADLINE,
                    f"its cut-off {_utc(order.latest_cancellation_date)} (24 h before its due "
                    f"date {_utc(order.due_date)}) had passed when the saga looked it up; "
                    "Airalo no longer cancels it, so it was not sent",
                )
        self._declare_cutoff(listing.orders)
        return True

    def _declare_cutoff(self, listed: list[FutureOrder]) -> None:
        """The deadline the saga races: the earliest cut-off of an order still to cancel
        (jeopardy ``AIRALO_CUTOFF_HORIZON`` before it while that order is not settled)."""
        open_orders = [order for order in listed if self._is_open(order.request_id)]
        if not open_orders:
            return
        first = min(open_orders, key=lambda order: order.latest_cancellation_date)
        horizon = outcomes.AIRALO_CUTOFF_HORIZON
        self._ledger.deadline(
            JeopardyCause.AIRALO_CUTOFF,
            first.latest_cancellation_date - horizon,
            lambda: self._is_open(first.request_id),
            f"order {first.request_id} is still not cancelled {horizon} before its cut-off "
            f"{_utc(first.latest_cancellation_date)}",
        )

    def _remember(self, order: FutureOrder) -> None:
        self.orders[order.request_id] = order
        record = self.outcomes[order.request_id]
        record.latest_cancellation_date = order.latest_cancellation_date
        if not record.outcome.is_final:
            record.reason = (
                f"listed as {order.status or 'pending'}; cancellable until "
                f"{_utc(order.latest_cancellation_date)}"
            )

    # -- cancelling ----------------------------------------------------------------

    async def _cancel_batch(self, batch: list[str], label: str) -> None:
        pending = [request_id for request_id in batch if self._is_open(request_id)]
        while pending and self._stop_reason is None:
            # Only where a verdict depends on it: resending an uncertain ID is harmless
            # (if our lost call got through, Airalo answers "already processed").
            must_settle = [
                i
                for i in pending
                if i in self._disputed or i in self._unverified or self._verdict_due(i)
            ]
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
                (self.orders[i].latest_cancellation_date for i in pending if i in self.orders),
                default=None,
            )
            self.cancel_calls += 1
            self._sends.update(pending)
            for request_id in pending:
                self.outcomes[request_id].outcome = OrderOutcome.CANCELLING
            until = f", retried until {_utc(deadline)}" if deadline else ""
            self._ledger.record(
                "cancel_call",
                f"{label}: call {self.cancel_calls} with {len(pending)} IDs{until}",
            )
            workflow.set_current_details(
                f"**{self._ledger.phase.value}**: {label}, cancelling {len(pending)} orders"
            )
            try:
                result = await self._send(pending, deadline, label)
            except ActivityError as error:
                if self._stop_reason is not None:
                    self._interrupted(pending, label, describe_failure(error))
                    return
                if is_cancelled_exception(error):
                    raise  # the run is being cancelled: the saga records it
                pending = await self._call_failed(pending, error, label)
                continue
            if result is None:
                self._interrupted(pending, label, "stopped before it was sent")
                return
            pending = self._apply_result(pending, result, label)

    async def _send(
        self, pending: list[str], deadline: datetime | None, label: str
    ) -> CancelFutureOrdersResult | None:
        """One cancel call, as a task :meth:`stop` can cancel. ``None``: stopped unsent."""
        call = asyncio.ensure_future(airalo_steps.cancel_future_orders(pending, deadline))
        self._call = call
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            if call.cancelled() and workflow.cancellation_reason() is None:
                # stop() cancelled the task before it scheduled the activity (or the
                # activity's answer arrived together with the cancellation).
                return None
            # The run itself is being cancelled: stop the call, and wait until Temporal
            # closed it, so an answer Airalo gave still counts.
            if not call.done():
                call.cancel()
            try:
                result = await call
            except (ActivityError, asyncio.CancelledError):
                pass
            else:
                self._apply_result(pending, result, label)
            raise
        finally:
            self._call = None

    def _apply_result(
        self, pending: list[str], result: CancelFutureOrdersResult, label: str
    ) -> list[str]:
        """Record Airalo's answer to a call; returns the IDs to send again."""
        if result.attempt > 1:
            # An earlier attempt may have reached Airalo and lost its answer.
            self._uncertain.update(pending)
        if result.accepted:
            for request_id in pending:
                self._settle(
                    request_id,
                    OrderOutcome.CANCELLED,
                    f"cancelled by Airalo (call {self.cancel_calls})",
                )
            self._uncertain.difference_update(pending)
            self._ledger.record("cancelled", f"{label}: {len(pending)} cancelled")
            return []
        named = {rejection.request_id for rejection in result.rejections}
        unnamed = set(pending) - named
        # Undocumented: the call may have cancelled them. Settled by lookup first.
        patches.retired(patches.AIRALO_SETTLE_UNNAMED_AFTER_422)
        self._uncertain.update(unnamed)
        self._unverified.update(unnamed)
        then = "the others are looked up before they are sent again"
        for rejection in result.rejections:
            self._apply_rejection(rejection)
        for request_id in pending:
            if self._is_open(request_id):
                self.outcomes[request_id].outcome = OrderOutcome.PENDING
        self._ledger.record(
            "rejected",
            f"{label}: Airalo refused {len(named)} of {len(pending)} IDs; {then}",
        )
        return [request_id for request_id in pending if self._is_open(request_id)]

    def _interrupted(self, pending: list[str], label: str, how: str) -> None:
        """stop() ended a call without Airalo's answer: its IDs are uncertain."""
        self._uncertain.update(pending)
        for request_id in pending:
            self.outcomes[request_id].outcome = OrderOutcome.PENDING
        self._ledger.record(
            "call_stopped",
            f"{label}: call {self.cancel_calls} stopped ({how}); "
            "whether Airalo applied it is settled by GET /v2/future-orders",
        )

    async def _wind_down(self, reason: str) -> None:
        """After stop(): settle what may have been cancelled, keep the rest."""
        uncertain = [i for i in self._request_ids if self._is_open(i) and i in self._uncertain]
        if uncertain:
            await self._settle_by_lookup(uncertain)
        kept = 0
        for request_id in self._request_ids:
            if not self._is_open(request_id):
                continue
            kept += 1
            listed = "" if request_id in self.orders else "; Airalo did not list it"
            self._settle(
                request_id, OrderOutcome.KEPT, f"not cancelled ({reason}); left in place{listed}"
            )
        self._ledger.record("stopped", f"{reason}: no further cancel call; {kept} left in place")

    def _verdict_due(self, request_id: str) -> bool:
        """Past its cut-off, or (unlisted) sent too often: no more calls for it."""
        order = self.orders.get(request_id)
        if order is not None:
            return order.cutoff_passed(workflow.now())
        return self._sends[request_id] >= MAX_SENDS_PER_ORDER

    def _drop_unsendable(self, pending: list[str]) -> list[str]:
        """IDs past their cut-off (or unlisted ones sent too often) end here, uncalled."""
        now = workflow.now()
        sendable = []
        # Settled meanwhile (a provider notice): not sent.
        pending = [request_id for request_id in pending if self._is_open(request_id)]
        for request_id in pending:
            order = self.orders.get(request_id)
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
                    or self._last_error
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
        self._note_error("cancel_failed", f"{label}: {reason}")
        self._uncertain.update(pending)
        if airalo_steps.ran_out_of_time(error):
            # The call gave up at its deadline, the earliest cut-off (or just before
            # it, when the next retry would fall after it): the loop settles the IDs
            # past their cut-off and sends the others again.
            for request_id in pending:
                self._unavailable[request_id] = reason
                self.outcomes[request_id].outcome = OrderOutcome.PENDING
            await self._wait_out_last_interval(pending)
            return pending
        # A rejection of the whole call: resending cannot help.
        await self._settle_by_lookup(pending)
        for request_id in pending:
            if self._is_open(request_id):
                self._settle(request_id, OrderOutcome.FAILED, f"Airalo refused: {reason}")
        return []

    async def _wait_out_last_interval(self, pending: list[str]) -> None:
        """Less than one retry interval before the earliest cut-off: a call could only
        fail the same way, so wait for the cut-off (those IDs then end
        ``MISSED_DEADLINE``) instead of re-sending."""
        cutoffs = [self.orders[i].latest_cancellation_date for i in pending if i in self.orders]
        if not cutoffs:
            return
        left = min(cutoffs) - workflow.now()
        retry_interval = CALL_RETRY.initial_interval or timedelta(seconds=1)
        last_interval = timedelta(0) < left < retry_interval
        if last_interval:
            patches.retired(patches.AIRALO_WAIT_OUT_LAST_INTERVAL)
            await workflow.sleep(left)

    def _apply_rejection(self, rejection: CancelRejection) -> None:
        request_id = rejection.request_id
        if request_id in self._fired:
            fired = _fired_reason(self._fired[request_id])
            self._settle(request_id, OrderOutcome.ALREADY_PROCESSED, f"{fired}; not cancelled")
            return
        if request_id in self._uncertain and rejection.kind in DISPUTABLE:
            # Maybe our own lost call cancelled it: the next loop asks the listing.
            self._disputed[request_id] = rejection
            self.outcomes[request_id].reason = (
                f"Airalo: {rejection.message}; an earlier call's answer was lost, "
                "checking GET /v2/future-orders"
            )
            return
        outcome, note = VERDICTS[rejection.kind]
        self._settle(request_id, outcome, f"Airalo: {rejection.message}{note}")

    async def _settle_by_lookup(self, request_ids: list[str]) -> None:
        """Decide uncertain IDs from ``GET /v2/future-orders`` (rules: ``docs/sagas.md``)."""
        listing = await self._list(
            request_ids,
            step="settle_failed",
            failure="an earlier cancel call's answer was lost and Airalo could not be asked "
            "whether it got through",
        )
        if listing is None:
            return
        listed = {order.request_id: order for order in listing.orders}
        now = workflow.now()
        verdicts = []
        for request_id in request_ids:
            self._uncertain.discard(request_id)
            how = (
                "a call Airalo refused with a 422 naming other IDs"
                if request_id in self._unverified
                else "a call whose answer was lost"
            )
            self._unverified.discard(request_id)
            disputed = self._disputed.pop(request_id, None)
            if request_id in listed:
                self._remember(listed[request_id])
                verdicts.append(f"{request_id} still listed")
                continue
            if request_id in self._fired:
                fired = _fired_reason(self._fired[request_id])
                self._settle(request_id, OrderOutcome.ALREADY_PROCESSED, f"{fired}; not cancelled")
                verdicts.append(f"{request_id} fired")
                continue
            seen = self.orders.get(request_id)
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
                    f"cancelled by {how}: no longer listed although "
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
        return not self.outcomes[request_id].outcome.is_final

    def _settle(self, request_id: str, outcome: OrderOutcome, reason: str) -> None:
        record = self.outcomes[request_id]
        record.outcome = outcome
        record.reason = reason

    def _note_error(self, step: str, error: str) -> None:
        self._last_error = error
        self._ledger.note_error(step, error)


def _fired_reason(at: datetime | None) -> str:
    when = f" at {_utc(at)}" if at else ""
    return f"fired{when} (Airalo's webhook)"


def _utc(moment: datetime) -> str:
    """Airalo's own notation, so reasons match what Airalo's dashboard shows."""
    return f"{format_airalo_date(moment)} UTC"
