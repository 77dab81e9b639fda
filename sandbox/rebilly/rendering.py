"""Rebilly's JSON for the sandbox's resources (timestamps in whole seconds, ``...Z``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sandbox.clock import format_seconds
from sandbox.rebilly.model import Cancellation, LineItem, Order, Reactivation


def _optional_time(moment: datetime | None) -> str | None:
    return format_seconds(moment) if moment is not None else None


def _set(values: dict[str, Any]) -> dict[str, Any]:
    """Drop unset optional fields the definition does not declare nullable."""
    return {key: value for key, value in values.items() if value is not None}


def line_item_json(item: LineItem, placed: datetime) -> dict[str, Any]:
    """A line item as the OrderCancellation schema's ``lineItems[]`` declares it."""
    return {
        "type": item.type,
        "unitPriceAmount": float(item.unit_price_amount),
        "unitPriceCurrency": item.unit_price_currency,
        "quantity": item.quantity,
        **_set(
            {
                "description": item.description,
                "periodStartTime": _optional_time(item.period_start_time),
                "periodEndTime": _optional_time(item.period_end_time),
            }
        ),
        "createdTime": format_seconds(placed),
        "updatedTime": format_seconds(placed),
    }


def cancellation_json(cancellation: Cancellation, self_href: str) -> dict[str, Any]:
    """Rebilly's OrderCancellation: every field, ``null`` only where the schema allows it.

    ``description`` (a non-nullable string) is left out while unset. The sandbox makes no
    invoices, so ``proratedInvoiceId`` and ``appliedInvoiceId`` stay ``null``.
    """
    placed = cancellation.line_items_time or cancellation.created_time
    return {
        "id": cancellation.id,
        "orderId": cancellation.order_id,
        "status": cancellation.status,
        "churnTime": _optional_time(cancellation.churn_time),
        "churnTimePolicy": cancellation.churn_time_policy,
        "canceledBy": cancellation.canceled_by,
        "reason": cancellation.reason,
        **_set({"description": cancellation.description}),
        "prorated": cancellation.prorated,
        "proratedInvoiceId": cancellation.prorated_invoice_id,
        "appliedInvoiceId": cancellation.applied_invoice_id,
        "lineItems": [line_item_json(item, placed) for item in cancellation.line_items],
        "lineItemSubtotal": {
            "amount": float(cancellation.subtotal),
            "currency": cancellation.currency,
        },
        "canceledTime": _optional_time(cancellation.canceled_time),
        "createdTime": format_seconds(cancellation.created_time),
        "updatedTime": format_seconds(cancellation.updated_time),
        "_links": [{"href": self_href, "rel": "self"}],
    }


def reactivation_json(reactivation: Reactivation, self_href: str) -> dict[str, Any]:
    """Rebilly's OrderReactivation; ``effectiveTime`` is write-only, so never returned."""
    return {
        "id": reactivation.id,
        "orderId": reactivation.order_id,
        **_set({"cancellationId": reactivation.cancellation_id}),
        "description": reactivation.description,
        **_set({"renewalTime": _optional_time(reactivation.renewal_time)}),
        "createdTime": format_seconds(reactivation.created_time),
        "updatedTime": format_seconds(reactivation.created_time),
        "_links": [{"href": self_href, "rel": "self"}],
    }


def order_json(order: Order) -> dict[str, Any]:
    """The sandbox's own view of an order (``/_sandbox/rebilly/orders``; not Rebilly's)."""
    return {
        "id": order.id,
        "nextRenewalTime": format_seconds(order.next_renewal_time),
        "amount": float(order.amount),
        "currency": order.currency,
        "renewalPeriodDays": order.renewal_period / timedelta(days=1),
    }
