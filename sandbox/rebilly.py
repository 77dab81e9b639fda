"""Rebilly order cancellations and reactivations (RFC 9457 problem details on errors).

Orders are implicit: any order id exists, renewing ``rebilly_default_renewal_days`` after it
is first seen (``POST /_sandbox/rebilly/orders`` seeds one explicitly). A ``confirmed``
cancellation becomes ``completed`` once the clock reaches its ``churnTime`` (lazily, on read).
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from starlette.responses import JSONResponse, Response

from sandbox.clock import as_utc, format_seconds, parse_iso
from sandbox.common import SandboxContext, read_payload
from sandbox.errors import FieldError, ProviderError, ProviderProfile, status_phrase

API_KEY_HEADER = "REB-APIKEY"
ERROR_TYPE_BASE = "https://www.rebilly.com/catalog/all/section/errors/"
PROBLEM_MEDIA_TYPE = "application/problem+json"

ID_PATTERN = re.compile(r"^[@~\-\.\w]+$")
MAX_ID_LENGTH = 50
MAX_DESCRIPTION_LENGTH = 255
CURRENCY_PATTERN = re.compile(r"^[A-Za-z]{3}$")
CENT = Decimal("0.01")

DRAFT, CONFIRMED, COMPLETED, REVOKED = "draft", "confirmed", "completed", "revoked"
ACTIVE = frozenset({DRAFT, CONFIRMED})
REQUEST_STATUSES = (DRAFT, CONFIRMED)
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
PATCHABLE_FIELDS = frozenset({"reason", "description"})
FILTERABLE_FIELDS = frozenset({"id", "orderId", "status", "reason", "canceledBy"})
SORTS = ("createdTime", "-createdTime")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


# --------------------------------------------------------------------------- errors

_PROBLEM_TYPES: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad Request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not Found"),
    409: ("conflict", "Conflict"),
    422: ("invalid-data", "Invalid data"),
    429: ("too-many-requests", "Too Many Requests"),
}


def render_error(error: ProviderError, path: str) -> Response:
    """RFC 9457 problem details; ``instance`` is the request path."""
    phrase = status_phrase(error.status)
    slug, title = _PROBLEM_TYPES.get(error.status, (phrase.lower().replace(" ", "-"), phrase))
    body: dict[str, Any] = {
        "type": ERROR_TYPE_BASE + slug,
        "title": title,
        "status": error.status,
        "detail": error.message,
        "instance": path,
    }
    if error.status == 422 or error.fields:
        body["invalidFields"] = [
            {"field": item.field, "message": item.message} for item in error.fields
        ]
    return JSONResponse(
        body, status_code=error.status, headers=error.headers, media_type=PROBLEM_MEDIA_TYPE
    )


def retry_headers(seconds: float, now: datetime) -> dict[str, str]:
    """Rebilly announces the retry moment as a UTC epoch timestamp, not a delay."""
    return {"X-RateLimit-Retry-After": str(math.ceil(now.timestamp() + seconds))}


PROFILE = ProviderProfile(
    name="rebilly",
    render=render_error,
    retry_headers=retry_headers,
    rate_limit_message="Too many requests.",
)


def invalid(fields: list[FieldError]) -> ProviderError:
    return ProviderError(status=422, message="Invalid data", fields=fields)


def conflict(message: str) -> ProviderError:
    return ProviderError(status=409, message=message)


def not_found(message: str) -> ProviderError:
    return ProviderError(status=404, message=message)


# --------------------------------------------------------------------------- validation


class FieldReader:
    """Collects the invalid fields of one JSON object while reading typed values from it."""

    def __init__(self, body: dict[str, Any], prefix: str = "") -> None:
        self.body = body
        self.prefix = prefix
        self.errors: list[FieldError] = []

    def fail(self, name: str, message: str) -> None:
        self.errors.append(FieldError(self.prefix + name, message))

    def text(
        self, name: str, *, required: bool = False, max_length: int | None = None
    ) -> str | None:
        value = self.body.get(name)
        if value is None or (required and value == ""):
            if required:
                self.fail(name, f"{name} is required.")
            return None
        if not isinstance(value, str):
            self.fail(name, f"{name} must be a string.")
            return None
        if max_length is not None and len(value) > max_length:
            self.fail(name, f"{name} must be {max_length} characters or fewer.")
            return None
        return value

    def choice(self, name: str, allowed: Iterable[str], default: str | None) -> str | None:
        options = tuple(allowed)
        value = self.body.get(name)
        if value is None:
            return default
        if value not in options:
            self.fail(name, f"{name} must be one of: {', '.join(options)}.")
            return default
        assert isinstance(value, str)
        return value

    def datetime(self, name: str) -> datetime | None:
        value = self.body.get(name)
        if value is None:
            return None
        parsed = parse_iso(value)
        if parsed is None:
            self.fail(name, f"{name} must be an ISO 8601 date-time.")
        return parsed

    def boolean(self, name: str, default: bool) -> bool:
        value = self.body.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(name, f"{name} must be a boolean.")
            return default
        return value

    def number(self, name: str) -> Decimal | None:
        value = self.body.get(name)
        if value is None:
            self.fail(name, f"{name} is required.")
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(name, f"{name} must be a number.")
            return None
        return Decimal(str(value))

    def positive_int(self, name: str) -> int | None:
        value = self.body.get(name)
        if value is None:
            self.fail(name, f"{name} is required.")
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.fail(name, f"{name} must be an integer of at least 1.")
            return None
        return value


def json_object(payload: Any) -> dict[str, Any]:
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise ProviderError(status=400, message="The request body must be a JSON object.")
    return payload


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

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "unitPriceAmount": float(self.unit_price_amount),
            "unitPriceCurrency": self.unit_price_currency,
            "quantity": self.quantity,
            "description": self.description,
            "periodStartTime": _optional_time(self.period_start_time),
            "periodEndTime": _optional_time(self.period_end_time),
        }


def _parse_line_item(item: Any, index: int) -> tuple[LineItem | None, list[FieldError]]:
    prefix = f"lineItems[{index}]."
    if not isinstance(item, dict):
        return None, [FieldError(f"lineItems[{index}]", "Line item must be an object.")]
    reader = FieldReader(item, prefix)
    item_type = reader.choice("type", LINE_ITEM_TYPES, None)
    if item.get("type") is None:
        reader.fail("type", "type is required.")
    amount = reader.number("unitPriceAmount")
    currency = reader.text("unitPriceCurrency", required=True)
    if currency is not None and not CURRENCY_PATTERN.fullmatch(currency):
        reader.fail("unitPriceCurrency", "unitPriceCurrency must be an ISO 4217 currency code.")
    quantity = reader.positive_int("quantity")
    description = reader.text("description")
    start = reader.datetime("periodStartTime")
    end = reader.datetime("periodEndTime")
    if reader.errors:
        return None, reader.errors
    assert item_type and amount is not None and currency and quantity is not None
    line = LineItem(item_type, amount, currency.upper(), quantity, description, start, end)
    return line, []


def _parse_line_items(value: Any) -> tuple[tuple[LineItem, ...], list[FieldError]]:
    if value is None:
        return (), []
    if not isinstance(value, list):
        return (), [FieldError("lineItems", "lineItems must be an array.")]
    items: list[LineItem] = []
    errors: list[FieldError] = []
    for index, raw in enumerate(value):
        item, item_errors = _parse_line_item(raw, index)
        errors += item_errors
        if item is not None:
            items.append(item)
    return tuple(items), errors


@dataclass(frozen=True)
class CancellationRequest:
    order_id: str
    status: str
    churn_time_policy: str | None
    churn_time: datetime | None
    reason: str
    canceled_by: str
    description: str | None
    prorated: bool
    prorated_invoice_id: str | None
    applied_invoice_id: str | None
    line_items: tuple[LineItem, ...]


def parse_cancellation(
    payload: Any, extra_errors: list[FieldError] | None = None
) -> CancellationRequest:
    """Validate a create/replace body; all invalid fields are reported in one 422."""
    reader = FieldReader(json_object(payload))
    order_id = reader.text("orderId", required=True)
    status = reader.choice("status", REQUEST_STATUSES, CONFIRMED)
    policy = reader.choice("churnTimePolicy", CHURN_POLICIES, None)
    churn_time = reader.datetime("churnTime")
    reason = reader.choice("reason", REASONS, "other")
    canceled_by = reader.choice("canceledBy", CANCELED_BY, "customer")
    description = reader.text("description", max_length=MAX_DESCRIPTION_LENGTH)
    prorated = reader.boolean("prorated", False)
    prorated_invoice_id = reader.text("proratedInvoiceId")
    applied_invoice_id = reader.text("appliedInvoiceId")
    line_items, item_errors = _parse_line_items(reader.body.get("lineItems"))
    errors = [*(extra_errors or []), *reader.errors, *item_errors]
    if errors:
        raise invalid(errors)
    assert order_id is not None and status and reason and canceled_by
    return CancellationRequest(
        order_id=order_id,
        status=status,
        churn_time_policy=policy,
        churn_time=churn_time,
        reason=reason,
        canceled_by=canceled_by,
        description=description,
        prorated=prorated,
        prorated_invoice_id=prorated_invoice_id,
        applied_invoice_id=applied_invoice_id,
        line_items=line_items,
    )


def id_errors(cancellation_id: str) -> list[FieldError]:
    if len(cancellation_id) > MAX_ID_LENGTH:
        return [FieldError("id", f"id must be {MAX_ID_LENGTH} characters or fewer.")]
    if not ID_PATTERN.fullmatch(cancellation_id):
        return [FieldError("id", "id must match ^[@~\\-\\.\\w]+$.")]
    return []


@dataclass(frozen=True)
class PatchRequest:
    changes: dict[str, str | None]


def parse_patch(payload: Any) -> PatchRequest:
    reader = FieldReader(json_object(payload))
    for name in reader.body:
        if name not in PATCHABLE_FIELDS:
            reader.fail(name, f"{name} can not be changed; only reason and description can.")
    changes: dict[str, str | None] = {}
    if "reason" in reader.body:
        changes["reason"] = reader.choice("reason", REASONS, "other")
    if "description" in reader.body:
        changes["description"] = reader.text("description", max_length=MAX_DESCRIPTION_LENGTH)
    if reader.errors:
        raise invalid(reader.errors)
    return PatchRequest(changes)


@dataclass(frozen=True)
class ReactivationRequest:
    order_id: str
    description: str | None
    effective_time: datetime | None


def parse_reactivation(payload: Any) -> ReactivationRequest:
    reader = FieldReader(json_object(payload))
    order_id = reader.text("orderId", required=True)
    description = reader.text("description", max_length=MAX_DESCRIPTION_LENGTH)
    effective_time = reader.datetime("effectiveTime")
    if reader.errors:
        raise invalid(reader.errors)
    assert order_id is not None
    return ReactivationRequest(order_id, description, effective_time)


@dataclass(frozen=True)
class ListQuery:
    filters: dict[str, frozenset[str]]
    descending: bool
    limit: int
    offset: int


def _int_param(raw: str | None, name: str, default: int, maximum: int | None) -> int | FieldError:
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or (maximum is not None and int(raw) > maximum):
        limit = f" between 0 and {maximum}" if maximum is not None else " of at least 0"
        return FieldError(name, f"{name} must be an integer{limit}.")
    return int(raw)


def _parse_filter(raw: str) -> dict[str, frozenset[str]] | FieldError:
    """``orderId:X;status:confirmed,draft`` → ``{"orderId": {X}, "status": {...}}``."""
    filters: dict[str, frozenset[str]] = {}
    for clause in filter(None, raw.split(";")):
        name, sep, values = clause.partition(":")
        if not sep or name not in FILTERABLE_FIELDS:
            allowed = ", ".join(sorted(FILTERABLE_FIELDS))
            return FieldError("filter", f"Unsupported filter '{clause}'; filter by {allowed}.")
        filters[name] = frozenset(values.split(","))
    return filters


def parse_list_query(params: dict[str, str]) -> ListQuery:
    limit = _int_param(params.get("limit"), "limit", DEFAULT_LIMIT, MAX_LIMIT)
    offset = _int_param(params.get("offset"), "offset", 0, None)
    filters = _parse_filter(params.get("filter", ""))
    sort = params.get("sort") or "-createdTime"
    errors = [value for value in (limit, offset, filters) if isinstance(value, FieldError)]
    if sort not in SORTS:
        errors.append(FieldError("sort", f"sort must be one of: {', '.join(SORTS)}."))
    if errors:
        raise invalid(errors)
    assert isinstance(limit, int) and isinstance(offset, int) and isinstance(filters, dict)
    return ListQuery(filters, sort.startswith("-"), limit, offset)


# --------------------------------------------------------------------------- state


def _optional_time(moment: datetime | None) -> str | None:
    return format_seconds(moment) if moment is not None else None


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


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
        return _cents(self.amount * max(Decimal(0), min(Decimal(1), share)))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "nextRenewalTime": format_seconds(self.next_renewal_time),
            "amount": float(self.amount),
            "currency": self.currency,
            "renewalPeriodDays": self.renewal_period / timedelta(days=1),
        }


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
    prorated_invoice_id: str | None = None
    applied_invoice_id: str | None = None
    line_items: tuple[LineItem, ...] = ()
    subtotal: Decimal = Decimal("0.00")
    currency: str = "EUR"
    canceled_time: datetime | None = None

    def matches(self, filters: dict[str, frozenset[str]]) -> bool:
        values = {
            "id": self.id,
            "orderId": self.order_id,
            "status": self.status,
            "reason": self.reason,
            "canceledBy": self.canceled_by,
        }
        return all(values[name] in allowed for name, allowed in filters.items())

    def to_json(self, self_href: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "orderId": self.order_id,
            "status": self.status,
            "churnTime": _optional_time(self.churn_time),
            "churnTimePolicy": self.churn_time_policy,
            "canceledBy": self.canceled_by,
            "reason": self.reason,
            "description": self.description,
            "prorated": self.prorated,
            "proratedInvoiceId": self.prorated_invoice_id,
            "appliedInvoiceId": self.applied_invoice_id,
            "lineItems": [item.to_json() for item in self.line_items],
            "lineItemSubtotal": {"amount": float(self.subtotal), "currency": self.currency},
            "canceledTime": _optional_time(self.canceled_time),
            "createdTime": format_seconds(self.created_time),
            "updatedTime": format_seconds(self.updated_time),
            "_links": [{"href": self_href, "rel": "self"}],
        }


@dataclass
class Reactivation:
    id: str
    order_id: str
    description: str | None
    effective_time: datetime
    created_time: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "orderId": self.order_id,
            "description": self.description,
            "effectiveTime": format_seconds(self.effective_time),
            "createdTime": format_seconds(self.created_time),
        }


@dataclass
class RebillyState:
    """The part of :class:`RebillyStore` that ``--state-file`` keeps across restarts."""

    orders: list[Order]
    cancellations: list[Cancellation]
    reactivations: list[Reactivation]
    seq: int


@dataclass
class RebillyStore:
    """Orders, cancellations and reactivations of the one sandbox organization."""

    context: SandboxContext
    _orders: dict[str, Order] = field(default_factory=dict)
    _cancellations: dict[str, Cancellation] = field(default_factory=dict)
    _reactivations: dict[str, Reactivation] = field(default_factory=dict)
    _seq: int = 0

    def reset(self) -> None:
        self._orders.clear()
        self._cancellations.clear()
        self._reactivations.clear()

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
        return {"churned": COMPLETED in statuses, "cancellationStatuses": statuses}

    # ----------------------------------------------------------------- lifecycle

    def _settle(self, now: datetime) -> None:
        """Complete every confirmed cancellation whose churn time has come."""
        for cancellation in self._cancellations.values():
            churn = cancellation.churn_time
            if cancellation.status == CONFIRMED and churn is not None and now >= churn:
                cancellation.status = COMPLETED
                cancellation.updated_time = max(cancellation.updated_time, churn)

    def _of_order(self, order_id: str) -> list[Cancellation]:
        return [c for c in self._cancellations.values() if c.order_id == order_id]

    def _check_order_free(self, order_id: str, cancellation_id: str) -> None:
        others = [c for c in self._of_order(order_id) if c.id != cancellation_id]
        if any(c.status == COMPLETED for c in others):
            raise conflict(f"Order {order_id} is already churned")
        active = next((c for c in others if c.status in ACTIVE), None)
        if active is not None:
            raise conflict(f"Order {order_id} already has an active cancellation {active.id}")

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
        cancellation.order_id = request.order_id
        cancellation.status = request.status
        cancellation.churn_time_policy = request.churn_time_policy
        cancellation.churn_time = churn_time
        cancellation.canceled_by = request.canceled_by
        cancellation.reason = request.reason
        cancellation.description = request.description
        cancellation.prorated = request.prorated
        cancellation.prorated_invoice_id = request.prorated_invoice_id
        cancellation.applied_invoice_id = request.applied_invoice_id
        cancellation.line_items = request.line_items
        cancellation.subtotal = _cents(subtotal)
        cancellation.currency = order.currency
        cancellation.updated_time = now
        if request.status == CONFIRMED and cancellation.canceled_time is None:
            cancellation.canceled_time = now

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
            raise conflict(
                f"Cancellation {cancellation_id} is {existing.status} and can not be changed"
            )
        self._settle(now)
        return cancellation, created

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
        cancellation = self.get(cancellation_id)
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
        """Revoke the order's confirmed cancellation."""
        now = self.now()
        self._settle(now)
        cancellations = self._of_order(request.order_id)
        if any(c.status == COMPLETED for c in cancellations):
            raise conflict(
                f"Order {request.order_id} is already churned and can not be reactivated"
            )
        confirmed = next((c for c in cancellations if c.status == CONFIRMED), None)
        if confirmed is None:
            raise conflict(f"Order {request.order_id} has no confirmed cancellation")
        confirmed.status = REVOKED
        confirmed.updated_time = now
        reactivation = Reactivation(
            id=str(uuid.uuid4()),
            order_id=request.order_id,
            description=request.description,
            effective_time=request.effective_time or now,
            created_time=now,
        )
        self._reactivations[reactivation.id] = reactivation
        return reactivation

    def get_reactivation(self, reactivation_id: str) -> Reactivation:
        reactivation = self._reactivations.get(reactivation_id)
        if reactivation is None:
            raise not_found(f"Reactivation {reactivation_id} not found")
        return reactivation


# --------------------------------------------------------------------------- routes


def _organization_url(request: Request) -> str:
    organization = request.path_params["organizationId"]
    return f"{str(request.base_url).rstrip('/')}/rebilly/organizations/{organization}"


def _cancellation_href(request: Request, cancellation_id: str) -> str:
    return f"{_organization_url(request)}/order-cancellations/{cancellation_id}"


def build_router(store: RebillyStore) -> APIRouter:
    """Provider routes, mounted at ``/rebilly/organizations/{organizationId}``."""

    async def authenticate(request: Request) -> None:
        settings = store.context.settings
        if request.headers.get(API_KEY_HEADER) != settings.rebilly_api_key:
            raise ProviderError(status=401, message="Invalid or missing REB-APIKEY header")
        organization = request.path_params.get("organizationId")
        if organization != settings.rebilly_organization_id:
            raise not_found(f"Organization {organization} not found")

    router = APIRouter(dependencies=[Depends(authenticate)])

    def cancellation_response(
        request: Request, cancellation: Cancellation, status: int, *, location: bool = False
    ) -> JSONResponse:
        href = _cancellation_href(request, cancellation.id)
        headers = {"Location": href} if location else None
        return JSONResponse(cancellation.to_json(href), status_code=status, headers=headers)

    @router.get("/order-cancellations")
    async def list_cancellations(request: Request) -> Response:
        query = parse_list_query(dict(request.query_params))
        total, page = store.search(query)
        body = [c.to_json(_cancellation_href(request, c.id)) for c in page]
        headers = {
            "Pagination-Total": str(total),
            "Pagination-Limit": str(query.limit),
            "Pagination-Offset": str(query.offset),
        }
        return JSONResponse(body, headers=headers)

    @router.post("/order-cancellations")
    async def create_cancellation(request: Request) -> Response:
        command = parse_cancellation(await read_payload(request))
        return cancellation_response(request, store.post(command), 201, location=True)

    @router.put("/order-cancellations/{cancellation_id}")
    async def put_cancellation(request: Request, cancellation_id: str) -> Response:
        payload = await read_payload(request)
        command = parse_cancellation(payload, id_errors(cancellation_id))
        cancellation, created = store.put(cancellation_id, command)
        return cancellation_response(
            request, cancellation, 201 if created else 200, location=created
        )

    @router.get("/order-cancellations/{cancellation_id}")
    async def get_cancellation(request: Request, cancellation_id: str) -> Response:
        return cancellation_response(request, store.get(cancellation_id), 200)

    @router.patch("/order-cancellations/{cancellation_id}")
    async def patch_cancellation(request: Request, cancellation_id: str) -> Response:
        command = parse_patch(await read_payload(request))
        return cancellation_response(request, store.patch(cancellation_id, command), 200)

    @router.delete("/order-cancellations/{cancellation_id}", status_code=204)
    async def delete_cancellation(cancellation_id: str) -> Response:
        store.delete(cancellation_id)
        return Response(status_code=204)

    @router.post("/order-reactivations")
    async def reactivate(request: Request) -> Response:
        reactivation = store.reactivate(parse_reactivation(await read_payload(request)))
        location = f"{_organization_url(request)}/order-reactivations/{reactivation.id}"
        return JSONResponse(reactivation.to_json(), status_code=201, headers={"Location": location})

    @router.get("/order-reactivations/{reactivation_id}")
    async def get_reactivation(reactivation_id: str) -> dict[str, Any]:
        return store.get_reactivation(reactivation_id).to_json()

    return router


class OrderSeed(BaseModel):
    """Body of ``POST /_sandbox/rebilly/orders``."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    id: str
    next_renewal_time: datetime | None = None
    amount: Decimal = Decimal("30.00")
    currency: str = "EUR"


def build_admin_router(store: RebillyStore) -> APIRouter:
    """Sandbox controls, mounted at ``/_sandbox/rebilly``."""
    router = APIRouter()

    @router.post("/orders")
    async def seed_order(spec: OrderSeed) -> dict[str, Any]:
        renewal = as_utc(spec.next_renewal_time) if spec.next_renewal_time else None
        return store.seed_order(spec.id, renewal, spec.amount, spec.currency).to_json()

    @router.get("/orders/{order_id}")
    async def get_order(order_id: str) -> dict[str, Any]:
        return store.order(order_id).to_json() | store.order_status(order_id)

    return router
