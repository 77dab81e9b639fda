"""Airalo's part: future eSIM orders cancelled before their cut-offs, re-created to undo.

The one place a saga cancels Airalo future orders (:class:`AiraloOrders`, running
the procedure :class:`workflows.airalo_canceller.FutureOrderCanceller`) and re-creates
what it cancelled (``airalo_steps.recreate_future_orders``). The
FutureOrderCancellation saga composes it with the steering kernel; the customer churn
prepares it last (its undo re-creates orders under new request ids) and keeps the
orders due at or before the churn date.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.airalo import FutureOrder, RecreatedFutureOrder, summarize_outcomes
    from domain.churn import AiraloPartState
    from domain.common import NoticeEvent, Provider, ProviderNotice

from workflows import airalo_steps, patches
from workflows.airalo_canceller import FutureOrderCanceller
from workflows.ledger import SagaLedger
from workflows.parts import ProviderPart, StepFailed


class AiraloOrders(ProviderPart):
    """Airalo: cancel ``request_ids`` (see :class:`FutureOrderCanceller` for the options)."""

    name = Provider.AIRALO.value

    def __init__(
        self,
        request_ids: list[str],
        ledger: SagaLedger,
        *,
        keep_due_before: datetime | None = None,
        on_listed: Callable[[list[FutureOrder]], None] | None = None,
    ) -> None:
        super().__init__(ledger)
        self.canceller = FutureOrderCanceller(
            request_ids, ledger, keep_due_before=keep_due_before, on_listed=on_listed
        )
        # Every re-creation asked for, newest last (a failed one is asked again).
        self.recreated: list[RecreatedFutureOrder] = []

    def orders_to_recreate(self) -> list[FutureOrder]:
        """The cancelled orders not re-created yet (from the details recorded at lookup)."""
        already = {r.original_request_id for r in self.recreated if r.request_id}
        return [
            order for order in self.canceller.cancelled_orders() if order.request_id not in already
        ]

    async def recreate(self, orders: list[FutureOrder]) -> list[RecreatedFutureOrder]:
        """Re-create ``orders`` (one result each: its new request id, or why not)."""
        results = await airalo_steps.recreate_future_orders(orders)
        self.recreated = [r for r in self.recreated if r.request_id] + results
        return results

    # -- as a part of a composition (``workflows.parts``) ---------------------------

    async def prepare(self, wish_date: datetime) -> None:
        await self.canceller.run()
        outcomes = list(self.canceller.outcomes.values())
        self._ledger.record("esims_cancelled", summarize_outcomes(outcomes) or "no orders")

    def reschedule_refusal(self, old: datetime, new: datetime) -> str | None:
        low, high = sorted((old, new))
        orders = self.canceller.orders.values()
        between = [order.request_id for order in orders if low < order.due_date <= high]
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

    def on_notice(self, notice: ProviderNotice) -> None:
        if notice.event == NoticeEvent.AIRALO_FUTURE_ORDER_FIRED:
            self.canceller.note_fired(notice.subject, notice.at)

    async def undo(self, cause: str) -> None:
        todo = self.orders_to_recreate()
        unrecorded = self.canceller.cancelled_without_details()
        if not unrecorded:
            await self._recreate(todo)
            return
        patches.retired(patches.CHURN_UNRECORDED_ORDERS_OWED)
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
        results = await self.recreate(todo)
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
