"""The one sandbox organization's orders, cancellations and reactivations, and their rules.

Orders are implicit: any order id exists, renewing ``rebilly_default_renewal_days`` after it
is first seen (``POST /_sandbox/rebilly/orders`` seeds one explicitly). A ``confirmed``
cancellation becomes ``completed`` once the clock reaches its ``churnTime`` (lazily, on read):
the order is then churned until a reactivation restarts it.

Subscription events (``subscription-canceled`` when a cancellation is confirmed,
``subscription-churned`` when it completes, ``subscription-reactivated``) are reported to
:attr:`RebillyStore.on_event` (the webhook outbox, ``sandbox/webhooks``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox.common import SandboxContext
from sandbox.errors import FieldError
from sandbox.rate_limits import Admission, SlidingWindow
from sandbox.rebilly.model import (
    ACTIVE,
    COMPLETED,
    CONFIRMED,
    DRAFT,
    REVOKED,
    Cancellation,
    Order,
    Reactivation,
    RebillyState,
    cents,
)
from sandbox.rebilly.parsing import (
    CancellationRequest,
    ListQuery,
    PatchRequest,
    ReactivationRequest,
)
from sandbox.rebilly.problems import conflict, invalid, not_found, unprocessable

SUBSCRIPTION_CANCELED = "subscription-canceled"
SUBSCRIPTION_CHURNED = "subscription-churned"
SUBSCRIPTION_REACTIVATED = "subscription-reactivated"

#: ``(event type, order, the cancellation concerned or None)``.
EventListener = Callable[[str, Order, Cancellation | None], None]


def _ignore_event(_event: str, _order: Order, _cancellation: Cancellation | None) -> None:
    """The default :attr:`RebillyStore.on_event`: nobody listens."""


@dataclass
class RebillyStore:
    """Orders, cancellations and reactivations of the one sandbox organization."""

    context: SandboxContext
    #: Called for every subscription event, in the order they happen.
    on_event: EventListener = field(default=_ignore_event, repr=False, compare=False)
    _orders: dict[str, Order] = field(default_factory=dict)
    _cancellations: dict[str, Cancellation] = field(default_factory=dict)
    _reactivations: dict[str, Reactivation] = field(default_factory=dict)
    _seq: int = 0
    #: Admitted writes (not persisted: a restart starts a fresh window).
    _writes: SlidingWindow = field(default_factory=SlidingWindow, repr=False, compare=False)

    def reset(self) -> None:
        self._orders.clear()
        self._cancellations.clear()
        self._reactivations.clear()
        self._writes.clear()

    def admit_write(self) -> Admission:
        """Count one write against ``rebilly_write_rate_limit`` per sliding window."""
        settings = self.context.settings
        window = timedelta(seconds=settings.rebilly_write_rate_limit_window_seconds)
        return self._writes.admit(self.context.now(), settings.rebilly_write_rate_limit, window)

    def snapshot(self) -> RebillyState:
        """The live state (shares the objects: serialise it right away)."""
        return RebillyState(
            orders=list(self._orders.values()),
            cancellations=list(self._cancellations.values()),
            reactivations=list(self._reactivations.values()),
            seq=self._seq,
        )

    def restore(self, state: RebillyState) -> None:
        self._orders = {order.id: order for order in state.orders}
        self._cancellations = {c.id: c for c in state.cancellations}
        self._reactivations = {r.id: r for r in state.reactivations}
        self._seq = state.seq

    def now(self) -> datetime:
        """Rebilly timestamps have whole seconds."""
        return self.context.now().replace(microsecond=0)

    # ----------------------------------------------------------------- orders

    def seed_order(
        self, order_id: str, next_renewal_time: datetime | None, amount: Decimal, currency: str
    ) -> Order:
        order = self.order(order_id)
        order.next_renewal_time = next_renewal_time or order.next_renewal_time
        order.amount = amount
        order.currency = currency.upper()
        return order

    def order(self, order_id: str) -> Order:
        """The order, created on first sight (orders are implicit)."""
        if order_id not in self._orders:
            period = timedelta(days=self.context.settings.rebilly_default_renewal_days)
            self._orders[order_id] = Order(
                id=order_id,
                next_renewal_time=self.now() + period,
                amount=Decimal("30.00"),
                currency="EUR",
                renewal_period=period,
            )
        return self._orders[order_id]

    def order_status(self, order_id: str) -> dict[str, Any]:
        self._settle(self.now())
        statuses = [c.status for c in self._cancellations.values() if c.order_id == order_id]
        return {"churned": self._churned_by(order_id) is not None, "cancellationStatuses": statuses}

    def _churned_by(self, order_id: str) -> Cancellation | None:
        """The completed cancellation that churned the order, unless a reactivation restarted it.

        An order is cancelled again only while it is active, so its newest completed
        cancellation is its latest churn.
        """
        completed = [c for c in self._of_order(order_id) if c.status == COMPLETED]
        last = max(completed, key=lambda c: c.seq, default=None)
        if last is None or any(r.cancellation_id == last.id for r in self._reactivations.values()):
            return None
        return last

    # ----------------------------------------------------------------- lifecycle

    def _settle(self, now: datetime) -> None:
        """Complete every confirmed cancellation whose churn time has come."""
        for cancellation in self._cancellations.values():
            churn = cancellation.churn_time
            if cancellation.status == CONFIRMED and churn is not None and now >= churn:
                cancellation.status = COMPLETED
                cancellation.updated_time = max(cancellation.updated_time, churn)
                order = self.order(cancellation.order_id)
                self.on_event(SUBSCRIPTION_CHURNED, order, cancellation)

    def tick(self) -> None:
        """Evaluate churn times now (the served sandbox's ticker, ``POST /_sandbox/tick``)."""
        self._settle(self.now())

    def _of_order(self, order_id: str) -> list[Cancellation]:
        return [c for c in self._cancellations.values() if c.order_id == order_id]

    def _check_order_free(self, order_id: str, cancellation_id: str) -> None:
        others = [c for c in self._of_order(order_id) if c.id != cancellation_id]
        if self._churned_by(order_id) is not None:
            raise unprocessable(f"Order {order_id} is already churned")
        active = next((c for c in others if c.status in ACTIVE), None)
        if active is not None:
            raise unprocessable(f"Order {order_id} already has an active cancellation {active.id}")

    def _resolve_churn_time(
        self, request: CancellationRequest, order: Order, now: datetime
    ) -> datetime:
        """``churnTimePolicy`` wins over ``churnTime``; neither means now."""
        if request.churn_time_policy == "now":
            return now
        if request.churn_time_policy == "at-next-renewal":
            return order.next_renewal_time
        return request.churn_time or now

    def _apply(
        self, cancellation: Cancellation, request: CancellationRequest, now: datetime
    ) -> None:
        order = self.order(request.order_id)
        churn_time = self._resolve_churn_time(request, order, now)
        subtotal = sum((item.signed_total for item in request.line_items), Decimal(0))
        if request.prorated:
            subtotal -= order.proration_credit(churn_time)
        try:
            subtotal = cents(subtotal)
        except InvalidOperation:  # more digits than money has: refused, not a 500
            out_of_range = FieldError("lineItems", "The line items' total is out of range.")
            raise invalid([out_of_range]) from None
        cancellation.order_id = request.order_id
        cancellation.status = request.status
        cancellation.churn_time_policy = request.churn_time_policy
        cancellation.churn_time = churn_time
        cancellation.canceled_by = request.canceled_by
        cancellation.reason = request.reason
        cancellation.description = request.description
        cancellation.prorated = request.prorated
        cancellation.line_items = request.line_items
        cancellation.line_items_time = now
        cancellation.subtotal = subtotal
        cancellation.currency = order.currency
        cancellation.updated_time = now
        if request.status == CONFIRMED and cancellation.canceled_time is None:
            cancellation.canceled_time = now
            self.on_event(SUBSCRIPTION_CANCELED, order, cancellation)

    # ----------------------------------------------------------------- operations

    def _create(
        self, cancellation_id: str, request: CancellationRequest, now: datetime
    ) -> Cancellation:
        self._check_order_free(request.order_id, cancellation_id)
        self._seq += 1
        cancellation = Cancellation(
            id=cancellation_id,
            seq=self._seq,
            order_id=request.order_id,
            created_time=now,
            updated_time=now,
        )
        self._apply(cancellation, request, now)
        self._cancellations[cancellation_id] = cancellation
        return cancellation

    def put(self, cancellation_id: str, request: CancellationRequest) -> tuple[Cancellation, bool]:
        """Create-or-update with the client's id; returns ``(cancellation, created)``."""
        now = self.now()
        self._settle(now)
        existing = self._cancellations.get(cancellation_id)
        if request.status == REVOKED:
            return self._revoke(cancellation_id, existing, request, now), False
        if existing is None:
            cancellation = self._create(cancellation_id, request, now)
            created = True
        elif existing.status == DRAFT:
            self._check_order_free(request.order_id, cancellation_id)
            self._apply(existing, request, now)
            cancellation, created = existing, False
        elif existing.status == CONFIRMED and existing.order_id == request.order_id:
            return existing, False  # idempotent re-create: unchanged
        else:
            raise unprocessable(
                f"Cancellation {cancellation_id} is {existing.status} and can not be changed"
            )
        self._settle(now)
        return cancellation, created

    def _revoke(
        self,
        cancellation_id: str,
        existing: Cancellation | None,
        request: CancellationRequest,
        now: datetime,
    ) -> Cancellation:
        """``PUT`` with ``status: revoked`` ("Revokes an order cancellation").

        A draft or confirmed cancellation of the same order is revoked (a confirmed one
        lets the order continue, as a reactivation would: ``subscription-reactivated``);
        a revoked one is answered unchanged. There is nothing to revoke under an unknown
        id, and a completed cancellation may not be changed: 422 either way.
        """
        if existing is None:
            raise invalid([FieldError("status", "Only an existing cancellation can be revoked.")])
        if existing.status == REVOKED and existing.order_id == request.order_id:
            return existing
        if existing.status not in ACTIVE or existing.order_id != request.order_id:
            raise unprocessable(
                f"Cancellation {cancellation_id} is {existing.status} and can not be changed"
            )
        was_confirmed = existing.status == CONFIRMED
        existing.status = REVOKED
        existing.updated_time = now
        if was_confirmed:
            self.on_event(SUBSCRIPTION_REACTIVATED, self.order(existing.order_id), existing)
        return existing

    def post(self, request: CancellationRequest) -> Cancellation:
        now = self.now()
        self._settle(now)
        cancellation = self._create(str(uuid.uuid4()), request, now)
        self._settle(now)
        return cancellation

    def get(self, cancellation_id: str) -> Cancellation:
        self._settle(self.now())
        cancellation = self._cancellations.get(cancellation_id)
        if cancellation is None:
            raise not_found(f"Cancellation {cancellation_id} not found")
        return cancellation

    def search(self, query: ListQuery) -> tuple[int, list[Cancellation]]:
        self._settle(self.now())
        matching = sorted(
            (c for c in self._cancellations.values() if c.matches(query.filters)),
            key=lambda c: (c.created_time, c.seq),
            reverse=query.descending,
        )
        return len(matching), matching[query.offset : query.offset + query.limit]

    def patch(self, cancellation_id: str, request: PatchRequest) -> Cancellation:
        """Change reason/description; a ``completed`` cancellation "may not be changed"."""
        cancellation = self.get(cancellation_id)
        if cancellation.status == COMPLETED:
            raise unprocessable(
                f"Cancellation {cancellation_id} is completed and can not be changed"
            )
        if "reason" in request.changes:
            cancellation.reason = request.changes["reason"] or "other"
        if "description" in request.changes:
            cancellation.description = request.changes["description"]
        cancellation.updated_time = self.now()
        return cancellation

    def delete(self, cancellation_id: str) -> None:
        cancellation = self.get(cancellation_id)
        if cancellation.status != DRAFT:
            raise conflict(
                f"Cancellation {cancellation_id} is {cancellation.status} and can not be deleted"
            )
        del self._cancellations[cancellation_id]

    def reactivate(self, request: ReactivationRequest) -> Reactivation:
        """Make the order active again, as ``POST /order-reactivations`` documents.

        Canceled but still active (a ``confirmed`` cancellation): that cancellation is
        revoked and the order continues its current period (``effectiveTime`` and
        ``renewalTime`` are ignored). Churned (its cancellation ``completed``, which stays
        completed): a new period starts at ``effectiveTime`` (default now) and renews at
        ``renewalTime`` (default one period later). An active order with nothing to undo: 409.
        """
        now = self.now()
        self._settle(now)
        order = self.order(request.order_id)
        confirmed = next((c for c in self._of_order(order.id) if c.status == CONFIRMED), None)
        churned_by = self._churned_by(order.id)
        if confirmed is not None:
            confirmed.status = REVOKED
            confirmed.updated_time = now
            related = confirmed
        elif churned_by is not None:
            effective = request.effective_time or now
            order.next_renewal_time = request.renewal_time or effective + order.renewal_period
            related = churned_by
        else:
            raise conflict(f"Order {order.id} is active and has no cancellation to undo")
        reactivation = Reactivation(
            id=str(uuid.uuid4()),
            order_id=order.id,
            description=request.description,
            effective_time=request.effective_time or now,
            created_time=now,
            cancellation_id=related.id,
            renewal_time=order.next_renewal_time,
        )
        self._reactivations[reactivation.id] = reactivation
        self.on_event(SUBSCRIPTION_REACTIVATED, order, related)
        return reactivation

    def get_reactivation(self, reactivation_id: str) -> Reactivation:
        reactivation = self._reactivations.get(reactivation_id)
        if reactivation is None:
            raise not_found(f"Reactivation {reactivation_id} not found")
        return reactivation
