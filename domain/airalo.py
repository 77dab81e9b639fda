"""Airalo future-order cancellation: the request, its rules, the provider's future orders.

Facts: ``shared/docs/provider-contracts.md`` §1 and seed 000. Pure code (no I/O, no
clock): the saga, the activities, the starter and the tests share these rules.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationError, field_validator

from domain.common import (
    CamelModel,
    InvalidRequest,
    ProviderNotice,
    SagaPhase,
    StepRecord,
    clean_identifier,
    problems_from_validation_error,
)
from domain.outcomes import Jeopardy

REQUEST_ID_LENGTH = 25
# Airalo's limit per POST /v2/cancel-future-orders; more IDs are split into batches.
MAX_IDS_PER_CANCEL = 10
# Our own bound on one saga (not Airalo's): keeps one run's history and status small.
MAX_REQUEST_IDS = 1000
# An order can be cancelled until ``latest_cancellation_date`` = due date - 24 h.
CANCELLATION_WINDOW = timedelta(hours=24)
# ``GET /v2/future-orders`` lists only ``pending`` orders unless ``status`` is given;
# these are every status it documents (processed and cancelled orders are never listed).
LISTED_STATUSES = ("pending", "failed", "retry")
# A runaway pagination (a provider bug) must not loop forever: at most this many pages
# of one status in one listing.
MAX_PAGES = 1000
# Airalo pages by page number: while others cancel orders, an order can slide from
# the next page onto one already read and be missed. An order we look for that a
# listing missed is looked for in a fresh listing, up to this many listings in all.
MAX_LISTINGS = 3
# Business errors ``{"code": N, "reason": ...}`` (HTTP 422): 13 operator maintenance and
# 53 unexpected error are transient (retried); every other code is final.
TRANSIENT_BUSINESS_CODES = frozenset({13, 53})
# Airalo writes every date as ``YYYY-MM-DD HH:MM`` in UTC.
AIRALO_DATE_FORMAT = "%Y-%m-%d %H:%M"
_AIRALO_DATE_FORMATS = (AIRALO_DATE_FORMAT, "%Y-%m-%d %H:%M:%S")

_REJECTION_KEY = re.compile(r"^request_ids\.(\d+)$")


class AiraloActivity(StrEnum):
    """Activity names: the workflow calls them by name and so never imports httpx."""

    LIST_FUTURE_ORDERS = "airalo.list_future_orders"
    LIST_FUTURE_ORDERS_PAGE = "airalo.list_future_orders_page"
    CANCEL_FUTURE_ORDERS = "airalo.cancel_future_orders"
    CREATE_FUTURE_ORDER = "airalo.create_future_order"


class OrderOutcome(StrEnum):
    """What became of one request id. ``PENDING`` and ``CANCELLING`` only while running.

    ``KEPT``: deliberately left in place, never cancelled: due at or before the
    churn date (the customer is still active then), or a revoke stopped the saga
    before it was cancelled.
    """

    PENDING = "PENDING"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_PROCESSED = "ALREADY_PROCESSED"
    MISSED_DEADLINE = "MISSED_DEADLINE"
    FAILED = "FAILED"
    KEPT = "KEPT"

    @property
    def is_final(self) -> bool:
        return self not in (OrderOutcome.PENDING, OrderOutcome.CANCELLING)


# -- dates -------------------------------------------------------------------------


def format_airalo_date(moment: datetime) -> str:
    """``YYYY-MM-DD HH:MM`` in UTC (Airalo has no seconds and no offset)."""
    if moment.tzinfo is None:
        raise ValueError("an Airalo date needs a timezone-aware datetime")
    return moment.astimezone(UTC).strftime(AIRALO_DATE_FORMAT)


def parse_airalo_date(text: str) -> datetime:
    """Airalo's ``YYYY-MM-DD HH:MM`` (seconds tolerated) as an aware UTC datetime."""
    for pattern in _AIRALO_DATE_FORMATS:
        try:
            return datetime.strptime(text.strip(), pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError(f"{text!r} is not an Airalo date (YYYY-MM-DD HH:MM, UTC)")


def earliest_due_date(now: datetime) -> datetime:
    """The first due date Airalo accepts for a new future order: "from the day after
    tomorrow (UTC)", i.e. midnight UTC two calendar days after ``now``'s UTC date."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + timedelta(days=2)


def can_create_for(due_date: datetime, now: datetime) -> bool:
    """Whether a future order due at ``due_date`` can still be created (re-created) now."""
    return due_date >= earliest_due_date(now)


def business_error(body: Any) -> tuple[int, str] | None:
    """``(code, reason)`` of an Airalo business error body ``{"code": N, "reason": "..."}``."""
    if not isinstance(body, Mapping) or "code" not in body or "reason" not in body:
        return None
    try:
        return int(body["code"]), str(body["reason"])
    except (TypeError, ValueError):
        return None


def _airalo_date(value: Any) -> Any:
    """Pydantic ``before`` hook: Airalo's own format, or anything pydantic reads."""
    if isinstance(value, str):
        try:
            return parse_airalo_date(value)
        except ValueError:
            return value
    return value


# -- the request -------------------------------------------------------------------


def _check_request_id(value: str) -> str:
    if len(value) != REQUEST_ID_LENGTH:
        raise ValueError(f"must be exactly {REQUEST_ID_LENGTH} characters (got {len(value)})")
    if value != value.strip() or any(not char.isprintable() for char in value):
        raise ValueError("must not contain spaces or control characters")
    return value


RequestId = Annotated[str, AfterValidator(_check_request_id)]


class FutureOrderCancellationRequest(CamelModel):
    """Cancel one or more Airalo future orders, by the ``request_id`` Airalo returned.

    Any number of IDs (the saga batches them by ten); each exactly 25 characters and
    unique. Time-free on purpose: whether an order is still cancellable is learnt
    from Airalo by the saga, not guessed at the edge.
    """

    request_ids: list[RequestId] = Field(min_length=1, max_length=MAX_REQUEST_IDS)
    customer_id: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("customer_id")
    @classmethod
    def _clean_customer_id(cls, value: str | None) -> str | None:
        return clean_identifier(value)

    @field_validator("request_ids")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        repeated = sorted(item for item, count in Counter(value).items() if count > 1)
        if repeated:
            raise ValueError(f"must be unique; repeated: {', '.join(repeated)}")
        return value

    def summary(self) -> str:
        """One line for the Temporal UI."""
        count = len(self.request_ids)
        what = (
            f"Airalo future order {self.request_ids[0]}"
            if count == 1
            else f"{count} Airalo future orders"
        )
        customer = f" for customer {self.customer_id}" if self.customer_id else ""
        return f"Cancel {what}{customer}"


def parse_future_order_cancellation_request(
    data: Mapping[str, Any],
) -> FutureOrderCancellationRequest:
    """Validate a caller's request completely, reporting every problem at once."""
    try:
        return FutureOrderCancellationRequest.model_validate(data)
    except ValidationError as error:
        raise InvalidRequest(problems_from_validation_error(error)) from None


def page_digest(request_ids: Sequence[str]) -> str:
    """A short fingerprint of one listing page's request ids (in any order)."""
    return hashlib.sha256("\n".join(sorted(request_ids)).encode()).hexdigest()[:16]


def future_order_cancellation_workflow_id(request: FutureOrderCancellationRequest) -> str:
    """The business key: the same set of IDs (in any order) is one saga."""
    digest = hashlib.sha256("\n".join(sorted(request.request_ids)).encode()).hexdigest()
    return f"cancel-future-orders-{digest[:20]}"


# -- Airalo's future orders --------------------------------------------------------


class FutureOrder(CamelModel):
    """A future order as ``GET /v2/future-orders`` lists it: recorded before cancelling,
    because these details are all the compensation has to re-create it."""

    request_id: str
    package_id: str
    quantity: int
    due_date: datetime
    latest_cancellation_date: datetime
    description: str | None = None
    status: str | None = None

    @field_validator("due_date", "latest_cancellation_date", mode="before")
    @classmethod
    def _read_airalo_dates(cls, value: Any) -> Any:
        return _airalo_date(value)

    @classmethod
    def from_airalo(cls, item: Mapping[str, Any]) -> FutureOrder:
        """One list item; a missing cut-off is the documented 24 h before the due date."""
        due = parse_airalo_date(str(item["due_date"]))
        cutoff = item.get("latest_cancellation_date")
        return cls(
            request_id=str(item["request_id"]),
            package_id=str(item["package_id"]),
            quantity=int(item["quantity"]),
            due_date=due,
            latest_cancellation_date=(
                parse_airalo_date(str(cutoff)) if cutoff else due - CANCELLATION_WINDOW
            ),
            description=item.get("description"),
            status=item.get("status"),
        )

    def cutoff_passed(self, now: datetime) -> bool:
        """Airalo refuses after the cut-off; at the very instant we do not try either."""
        return now >= self.latest_cancellation_date

    def due_by(self, moment: datetime) -> bool:
        """Due at or before ``moment`` (e.g. a churn date: such an order is kept)."""
        return self.due_date <= moment

    def same_order_as(self, other: FutureOrder) -> bool:
        """Identical details (what a re-created order shares with its original)."""
        return (
            self.package_id == other.package_id
            and self.quantity == other.quantity
            and self.due_date == other.due_date
            and (self.description or None) == (other.description or None)
        )


def cancellation_batches(
    request_ids: Sequence[str], orders: Mapping[str, FutureOrder]
) -> list[list[str]]:
    """Batches of at most ten, earliest cut-off first.

    IDs Airalo did not list (unknown or already processed) have no cut-off; they go
    last, and the cancel call's 422 tells what they are. Ties keep request order.
    """
    position = {request_id: index for index, request_id in enumerate(request_ids)}
    far = datetime.max.replace(tzinfo=UTC)

    def key(request_id: str) -> tuple[datetime, int]:
        order = orders.get(request_id)
        return (order.latest_cancellation_date if order else far, position[request_id])

    ordered = sorted(request_ids, key=key)
    return [
        ordered[start : start + MAX_IDS_PER_CANCEL]
        for start in range(0, len(ordered), MAX_IDS_PER_CANCEL)
    ]


# -- a 422 from POST /v2/cancel-future-orders --------------------------------------


class RejectionKind(StrEnum):
    NOT_FOUND = "NOT_FOUND"
    ALREADY_PROCESSED = "ALREADY_PROCESSED"
    PAST_CUTOFF = "PAST_CUTOFF"
    INVALID = "INVALID"


class CancelRejection(CamelModel):
    """One ``request_ids.N`` entry of a 422: which ID, why, in Airalo's words."""

    request_id: str
    kind: RejectionKind
    message: str


def classify_rejection(message: str) -> RejectionKind:
    """Airalo's documented variants: does not exist, already processed, wrong length."""
    text = message.lower()
    if "does not exist" in text or "not found" in text:
        return RejectionKind.NOT_FOUND
    if "already processed" in text:
        return RejectionKind.ALREADY_PROCESSED
    if "24 hours" in text or "deadline" in text or "cancellation date" in text:
        return RejectionKind.PAST_CUTOFF
    return RejectionKind.INVALID


def parse_cancel_rejections(request_ids: Sequence[str], body: Any) -> list[CancelRejection]:
    """The per-index rejections of a 422 body, mapped back to the IDs we sent.

    ``{"data": {"request_ids.2": "Request ID: X is already processed ..."}, ...}``.
    Keys that are not ``request_ids.N`` with N in range are ignored; an empty result
    means the 422 was not about individual IDs (the caller treats it as a rejection
    of the whole call).
    """
    data = body.get("data") if isinstance(body, Mapping) else None
    if not isinstance(data, Mapping):
        return []
    rejections: dict[str, CancelRejection] = {}
    for key, raw in data.items():
        match = _REJECTION_KEY.match(str(key))
        if match is None:
            continue
        index = int(match.group(1))
        if index >= len(request_ids):
            continue
        message = " ".join(str(part) for part in raw) if isinstance(raw, list) else str(raw)
        request_id = request_ids[index]
        rejections[request_id] = CancelRejection(
            request_id=request_id, kind=classify_rejection(message), message=message
        )
    return [rejections[request_id] for request_id in request_ids if request_id in rejections]


# -- activity inputs and outputs -----------------------------------------------------


class ListFutureOrders(CamelModel):
    """``GET /v2/future-orders``, every page of every status in ``statuses`` (one
    listing per status: without ``status`` Airalo lists only pending orders). With
    ``request_ids`` only those are returned (the saga's history stays small however
    many orders the partner has)."""

    request_ids: list[str] | None = None
    statuses: list[str] = Field(default_factory=lambda: list(LISTED_STATUSES))
    from_due_date: datetime | None = None
    to_due_date: datetime | None = None


class FutureOrdersListed(CamelModel):
    orders: list[FutureOrder]
    # Pages read, over all the statuses listed.
    pages: int
    # Every order Airalo listed, before filtering by ``request_ids`` (read page by
    # page: an order on two pages, having slid between them, is counted twice).
    listed: int


class ListFutureOrdersPage(CamelModel):
    """``GET /v2/future-orders``: one page of one status, one HTTP request (a lane's
    limit counts activities, so this is the rate Airalo sees). With ``request_ids``
    only those of the page's orders are returned."""

    status: str
    page: int = Field(ge=1)
    request_ids: list[str] | None = None
    from_due_date: datetime | None = None
    to_due_date: datetime | None = None


class FutureOrdersPage(CamelModel):
    """One page: the wanted orders on it, and what tells the workflow whether to read on."""

    orders: list[FutureOrder]
    # Orders on the page, before filtering by ``request_ids``.
    listed: int
    # No page after this one: ``meta.last_page`` reached, or a short or empty page.
    last: bool
    # The page's request ids, hashed: a page equal to one already read means Airalo
    # ignored ``page`` (stop, not loop) without the ids in the workflow's history.
    digest: str


class CancelFutureOrders(CamelModel):
    request_ids: list[str] = Field(min_length=1, max_length=MAX_IDS_PER_CANCEL)


class CancelFutureOrdersResult(CamelModel):
    """200: ``rejections`` is empty and every ID was cancelled. 422 per index: nothing
    was cancelled; the named IDs are refused and the others may be sent again."""

    request_ids: list[str]
    rejections: list[CancelRejection] = Field(default_factory=list)
    # > 1 when earlier attempts of this call failed without an answer: one of
    # them may have reached Airalo and cancelled these orders.
    attempt: int = 1

    @property
    def accepted(self) -> bool:
        return not self.rejections


class CreateFutureOrder(CamelModel):
    """Re-create ``order`` (the compensation). ``identical_before`` are the request IDs of
    orders with the same details that existed before we started: on a retry anything
    else with these details is the order our lost first attempt created."""

    order: FutureOrder
    identical_before: list[str] = Field(default_factory=list)


class CreatedFutureOrder(CamelModel):
    original_request_id: str
    request_id: str
    due_date: datetime
    latest_cancellation_date: datetime
    # True when a retry found the order a lost earlier attempt had created.
    recovered: bool = False

    @field_validator("due_date", "latest_cancellation_date", mode="before")
    @classmethod
    def _read_airalo_dates(cls, value: Any) -> Any:
        return _airalo_date(value)


class RecreatedFutureOrder(CamelModel):
    """The compensation's result for one order: a new request id, or why not."""

    original_request_id: str
    request_id: str | None = None
    error: str | None = None


# -- the saga's account ----------------------------------------------------------------


class OrderOutcomeRecord(CamelModel):
    request_id: str
    outcome: OrderOutcome
    reason: str = ""
    latest_cancellation_date: datetime | None = None


class FutureOrderCancellationStatus(CamelModel):
    """Everything an operator needs about one cancellation (the ``status`` query)."""

    workflow_id: str
    phase: SagaPhase
    customer_id: str | None
    outcomes: list[OrderOutcomeRecord]
    # Details (and status) as Airalo listed them before cancelling: what the
    # compensation re-creates an order from.
    recorded_orders: list[FutureOrder]
    # Cancel calls / listings the saga made (each an activity: retries after a
    # fault are the same call and not counted again).
    cancel_calls: int
    lookups: int
    last_error: str | None
    steps: list[StepRecord]
    jeopardy: list[Jeopardy] = Field(
        default_factory=list, description="deadlines neared without being met (saga.jeopardy)"
    )
    # After a revoke: each cancelled order's re-creation (its new request id, or why not).
    recreated: list[RecreatedFutureOrder] = Field(default_factory=list)
    # Provider webhooks routed to the saga, each once.
    notices: list[ProviderNotice] = Field(default_factory=list)


def summarize_outcomes(outcomes: Sequence[OrderOutcomeRecord]) -> str:
    """``3 CANCELLED, 1 NOT_FOUND`` in the enum's order."""
    counts = Counter(record.outcome for record in outcomes)
    return ", ".join(f"{counts[kind]} {kind.value}" for kind in OrderOutcome if counts[kind])
