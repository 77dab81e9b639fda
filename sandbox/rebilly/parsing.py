"""Reading Rebilly request bodies and query strings the way Rebilly validates them.

Every parser reports all invalid fields of a request in one 422 (``invalidFields``), named
in dot notation as Rebilly documents it (``lineItems.0.quantity``). Read-only fields of
the OpenAPI definition (``id``, ``proratedInvoiceId``, ``appliedInvoiceId``, timestamps,
``lineItemSubtotal``, ``_links``) and unknown fields are ignored in request bodies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sandbox.clock import parse_iso
from sandbox.errors import FieldError, ProviderError
from sandbox.rebilly.model import (
    CANCELED_BY,
    CHURN_POLICIES,
    CONFIRMED,
    DRAFT,
    LINE_ITEM_TYPES,
    REASONS,
    REVOKED,
    LineItem,
)
from sandbox.rebilly.problems import invalid

ID_PATTERN = re.compile(r"^[@~\-\.\w]+$")
MAX_ID_LENGTH = 50
MAX_DESCRIPTION_LENGTH = 255
MAX_LINE_ITEM_DESCRIPTION_LENGTH = 1000
CURRENCY_PATTERN = re.compile(r"^[A-Za-z]{3}$")
#: ``completed`` is the one read-only status of the OrderCancellation schema.
REQUEST_STATUSES = (DRAFT, CONFIRMED, REVOKED)
PATCHABLE_FIELDS = frozenset({"reason", "description"})
FILTERABLE_FIELDS = frozenset({"id", "orderId", "status", "reason", "canceledBy"})
SORTS = ("createdTime", "-createdTime")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


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
    """The body as an object; anything else is a 422 (the operations we serve document
    no 400)."""
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise ProviderError(status=422, message="The request body must be a JSON object.")
    return payload


def _parse_line_item(item: Any, index: int) -> tuple[LineItem | None, list[FieldError]]:
    prefix = f"lineItems.{index}."
    if not isinstance(item, dict):
        return None, [FieldError(f"lineItems.{index}", "Line item must be an object.")]
    reader = FieldReader(item, prefix)
    item_type = reader.choice("type", LINE_ITEM_TYPES, None)
    if item.get("type") is None:
        reader.fail("type", "type is required.")
    amount = reader.number("unitPriceAmount")
    currency = reader.text("unitPriceCurrency", required=True)
    if currency is not None and not CURRENCY_PATTERN.fullmatch(currency):
        reader.fail("unitPriceCurrency", "unitPriceCurrency must be an ISO 4217 currency code.")
    quantity = reader.positive_int("quantity")
    description = reader.text("description", max_length=MAX_LINE_ITEM_DESCRIPTION_LENGTH)
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
    line_items: tuple[LineItem, ...]


def parse_cancellation(
    payload: Any, extra_errors: list[FieldError] | None = None
) -> CancellationRequest:
    """Validate a create/replace body; all invalid fields are reported in one 422."""
    reader = FieldReader(json_object(payload))
    order_id = reader.text("orderId", required=True, max_length=MAX_ID_LENGTH)
    status = reader.choice("status", REQUEST_STATUSES, CONFIRMED)
    policy = reader.choice("churnTimePolicy", CHURN_POLICIES, None)
    churn_time = reader.datetime("churnTime")
    reason = reader.choice("reason", REASONS, "other")
    canceled_by = reader.choice("canceledBy", CANCELED_BY, "customer")
    description = reader.text("description", max_length=MAX_DESCRIPTION_LENGTH)
    prorated = reader.boolean("prorated", False)
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
    renewal_time: datetime | None


def parse_reactivation(payload: Any) -> ReactivationRequest:
    reader = FieldReader(json_object(payload))
    order_id = reader.text("orderId", required=True, max_length=MAX_ID_LENGTH)
    description = reader.text("description", max_length=MAX_DESCRIPTION_LENGTH)
    effective_time = reader.datetime("effectiveTime")
    renewal_time = reader.datetime("renewalTime")
    reader.text("paymentInstrumentId", max_length=MAX_ID_LENGTH)  # validated, not modelled
    if reader.errors:
        raise invalid(reader.errors)
    assert order_id is not None
    return ReactivationRequest(order_id, description, effective_time, renewal_time)


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
