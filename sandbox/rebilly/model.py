"""Rebilly's vocabulary and the sandbox's state: orders, cancellations, reactivations.

Plain dataclasses, so :class:`RebillyState` can be persisted as JSON as it is (see
``sandbox/persistence.py``). Their JSON on the wire is rendered by ``rendering.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

DRAFT, CONFIRMED, COMPLETED, REVOKED = "draft", "confirmed", "completed", "revoked"
ACTIVE = frozenset({DRAFT, CONFIRMED})
CHURN_POLICIES = ("now", "at-next-renewal")
CANCELED_BY = ("merchant", "rebilly", "customer")
REASONS = (
    "bugs-or-problems",
    "billing-failure",
    "risk-warning",
    "missing-features",
    "other",
    "did-not-want",
    "contract-expired",
    "did-not-use",
    "too-expensive",
    "do-not-remember",
)
LINE_ITEM_TYPES = ("credit", "debit")
CENT = Decimal("0.01")


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class LineItem:
    type: str
    unit_price_amount: Decimal
    unit_price_currency: str
    quantity: int
    description: str | None = None
    period_start_time: datetime | None = None
    period_end_time: datetime | None = None

    @property
    def signed_total(self) -> Decimal:
        """Debits add to the subtotal, credits subtract from it."""
        total = self.unit_price_amount * self.quantity
        return total if self.type == "debit" else -total


@dataclass
class Order:
    id: str
    next_renewal_time: datetime
    amount: Decimal
    currency: str
    renewal_period: timedelta

    def proration_credit(self, churn_time: datetime) -> Decimal:
        """Pro-rata credit for the time between churn and the next renewal (positive)."""
        tick = timedelta(microseconds=1)
        remaining = Decimal((self.next_renewal_time - churn_time) // tick)
        share = remaining / Decimal(self.renewal_period // tick)
        return cents(self.amount * max(Decimal(0), min(Decimal(1), share)))


@dataclass
class Cancellation:
    id: str
    seq: int
    order_id: str
    created_time: datetime
    updated_time: datetime
    status: str = DRAFT
    churn_time_policy: str | None = None
    churn_time: datetime | None = None
    canceled_by: str = "customer"
    reason: str = "other"
    description: str | None = None
    prorated: bool = False
    # Read-only at Rebilly (its invoices); the sandbox makes no invoices, so always None.
    prorated_invoice_id: str | None = None
    applied_invoice_id: str | None = None
    line_items: tuple[LineItem, ...] = ()
    subtotal: Decimal = Decimal("0.00")
    currency: str = "EUR"
    canceled_time: datetime | None = None
    # When the line items were last (re)placed by a create or PUT (their createdTime).
    line_items_time: datetime | None = None

    def matches(self, filters: dict[str, frozenset[str]]) -> bool:
        values = {
            "id": self.id,
            "orderId": self.order_id,
            "status": self.status,
            "reason": self.reason,
            "canceledBy": self.canceled_by,
        }
        return all(values[name] in allowed for name, allowed in filters.items())


@dataclass
class Reactivation:
    id: str
    order_id: str
    description: str | None
    effective_time: datetime
    created_time: datetime
    # The cancellation it revoked, or the completed one whose churned order it restarted.
    cancellation_id: str | None = None
    # The order's next renewal after the reactivation.
    renewal_time: datetime | None = None


@dataclass
class RebillyState:
    """The part of :class:`~sandbox.rebilly.store.RebillyStore` that ``--state-file`` keeps."""

    orders: list[Order]
    cancellations: list[Cancellation]
    reactivations: list[Reactivation]
    seq: int
