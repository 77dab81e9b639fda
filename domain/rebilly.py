"""Rebilly order cancellation: the request, its rules, Rebilly's OrderCancellation.

Facts: ``shared/docs/provider-contracts.md`` §2 and seed 002.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from domain.common import (
    CamelModel,
    InvalidRequest,
    ProviderNotice,
    SagaPhase,
    StepRecord,
    check_schedule,
    clean_identifier,
    fit_to_limit,
    problems_from_validation_error,
    schedule_problems,
)
from domain.outcomes import Jeopardy

# Rebilly's ResourceId rule, for our cancellation ids and the ids we are given.
REBILLY_ID_MAX_LENGTH = 50
REBILLY_ID_PATTERN = r"^[@~\-\.\w]+$"
DESCRIPTION_MAX_LENGTH = 255
# OrderCancellation.yaml: lineItems[].description has maxLength 1000.
LINE_ITEM_DESCRIPTION_MAX_LENGTH = 1000
CURRENCY_PATTERN = r"^[A-Za-z]{3}$"

_REBILLY_ID = re.compile(REBILLY_ID_PATTERN)


class RebillyActivity(StrEnum):
    """Activity names: the workflow calls them by name and so never imports httpx."""

    PUT_CANCELLATION = "rebilly.put_cancellation"
    FIND_CANCELLATION = "rebilly.find_cancellation"
    AWAIT_CANCELLATION_COMPLETED = "rebilly.await_cancellation_completed"
    REACTIVATE_ORDER = "rebilly.reactivate_order"
    DELETE_DRAFT = "rebilly.delete_draft"


class ChurnTimePolicy(StrEnum):
    NOW = "now"
    AT_NEXT_RENEWAL = "at-next-renewal"


class CancellationReason(StrEnum):
    BUGS_OR_PROBLEMS = "bugs-or-problems"
    BILLING_FAILURE = "billing-failure"
    RISK_WARNING = "risk-warning"
    MISSING_FEATURES = "missing-features"
    OTHER = "other"
    DID_NOT_WANT = "did-not-want"
    CONTRACT_EXPIRED = "contract-expired"
    DID_NOT_USE = "did-not-use"
    TOO_EXPENSIVE = "too-expensive"
    DO_NOT_REMEMBER = "do-not-remember"


class CanceledBy(StrEnum):
    MERCHANT = "merchant"
    REBILLY = "rebilly"
    CUSTOMER = "customer"


class LineItemType(StrEnum):
    CREDIT = "credit"
    DEBIT = "debit"


class RebillyStatus(StrEnum):
    """An order cancellation's status at Rebilly."""

    DRAFT = "draft"
    CONFIRMED = "confirmed"
    COMPLETED = "completed"
    REVOKED = "revoked"


def _require_offset(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("must be ISO 8601 with a UTC offset, e.g. 2026-12-01T00:00:00Z")
    return value


class LineItem(CamelModel):
    """An item for the new invoice (Rebilly adds the proration item itself)."""

    type: LineItemType
    unit_price_amount: float = Field(allow_inf_nan=False)
    unit_price_currency: str = Field(pattern=CURRENCY_PATTERN)
    quantity: int = Field(ge=1)
    description: str | None = Field(default=None, max_length=LINE_ITEM_DESCRIPTION_MAX_LENGTH)
    period_start_time: datetime | None = None
    period_end_time: datetime | None = None

    @field_validator("unit_price_currency")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @field_validator("period_start_time", "period_end_time")
    @classmethod
    def _offset(cls, value: datetime | None) -> datetime | None:
        return _require_offset(value)

    @model_validator(mode="after")
    def _period_in_order(self) -> LineItem:
        if (
            self.period_start_time is not None
            and self.period_end_time is not None
            and self.period_end_time < self.period_start_time
        ):
            raise ValueError("periodEndTime must not be before periodStartTime")
        return self


def _check_rebilly_id(value: str | None) -> str | None:
    if value is not None and not _REBILLY_ID.fullmatch(value):
        raise ValueError("may contain only letters, digits and _ - . ~ @")
    return value


# Rebilly's OpenAPI definition marks proratedInvoiceId read-only (Rebilly picks the
# invoice), so we never send it. Inputs recorded before it was dropped still carry it:
# workflow histories hold the request and every PUT body (``"proratedInvoiceId": null``).
_DROPPED_FIELDS = ("proratedInvoiceId", "prorated_invoice_id")


def _without_dropped_fields(data: Any) -> Any:
    """Ignore fields we no longer model, so recorded inputs still validate on replay."""
    if isinstance(data, Mapping) and any(name in data for name in _DROPPED_FIELDS):
        return {key: value for key, value in data.items() if key not in _DROPPED_FIELDS}
    return data


class OrderCancellationRequest(CamelModel):
    """What a caller asks for: cancel one Rebilly order, now, at a time or at renewal.

    Every field of Rebilly's request body a caller may set, with Rebilly's
    documented defaults, plus ``draft`` (preview first, confirm later) and our
    ``customerId``. Validation is time-free (replays happen long after the
    churn time); "not in the past" lives in :func:`check_order_cancellation_request`.
    """

    order_id: str = Field(min_length=1, max_length=REBILLY_ID_MAX_LENGTH)
    # churnTime before churnTimePolicy: the policy's validator sees it.
    churn_time: datetime | None = None
    churn_time_policy: ChurnTimePolicy | None = None
    reason: CancellationReason = CancellationReason.OTHER
    canceled_by: CanceledBy = CanceledBy.CUSTOMER
    prorated: bool = False
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX_LENGTH)
    line_items: list[LineItem] = Field(default_factory=list)
    draft: bool = False
    customer_id: str | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="before")
    @classmethod
    def _ignore_dropped_fields(cls, data: Any) -> Any:
        return _without_dropped_fields(data)

    @field_validator("customer_id")
    @classmethod
    def _clean_customer_id(cls, value: str | None) -> str | None:
        return clean_identifier(value)

    @field_validator("order_id")
    @classmethod
    def _rebilly_id(cls, value: str) -> str:
        value = clean_identifier(value) or ""
        _check_rebilly_id(value)
        return value

    @field_validator("churn_time")
    @classmethod
    def _offset(cls, value: datetime | None) -> datetime | None:
        return _require_offset(value)

    @field_validator("churn_time_policy")
    @classmethod
    def _not_both(
        cls, value: ChurnTimePolicy | None, info: ValidationInfo
    ) -> ChurnTimePolicy | None:
        # Rebilly silently lets the policy win; a caller who sent both meant
        # one of them, so ask instead of guessing.
        if value is not None and info.data.get("churn_time") is not None:
            raise ValueError("give churnTime or churnTimePolicy, not both")
        return value

    def body(self, status: RebillyStatus) -> CancellationBody:
        """The PUT body for this request as a draft or a confirmed cancellation."""
        return CancellationBody(
            order_id=self.order_id,
            status=status,
            churn_time=self.churn_time,
            churn_time_policy=self.churn_time_policy,
            reason=self.reason,
            canceled_by=self.canceled_by,
            prorated=self.prorated,
            description=self.description,
            line_items=list(self.line_items),
        )

    def summary(self) -> str:
        """One line for the Temporal UI."""
        if self.churn_time is not None:
            when = self.churn_time.isoformat()
        elif self.churn_time_policy == ChurnTimePolicy.AT_NEXT_RENEWAL:
            when = "next renewal"
        else:
            when = "now"
        mode = " (draft preview first)" if self.draft else ""
        customer = f" for customer {self.customer_id}" if self.customer_id else ""
        return f"Cancel Rebilly order {self.order_id} at {when}{mode}{customer}"


def check_order_cancellation_request(request: OrderCancellationRequest, now: datetime) -> None:
    """The rules that depend on the clock, checked once, at the edge."""
    check_schedule("churnTime", request.churn_time, now)


def parse_order_cancellation_request(
    data: Mapping[str, Any], now: datetime | None
) -> OrderCancellationRequest:
    """Validate a caller's request completely, reporting every problem at once.

    ``now`` is the edge's clock for the date rules (:func:`schedule_problems`);
    ``None`` skips them, to read a request accepted earlier (a redelivery).
    """
    try:
        request = OrderCancellationRequest.model_validate(data)
    except ValidationError as error:
        problems = problems_from_validation_error(error)
        raise InvalidRequest(
            problems + schedule_problems("churnTime", data.get("churnTime"), now)
        ) from None
    if now is not None:
        check_order_cancellation_request(request, now)
    return request


def order_cancellation_workflow_id(request: OrderCancellationRequest) -> str:
    """The business key: one saga per order, so duplicate requests collapse.

    Order ids follow Rebilly's id rule (checked by the model), so they are safe
    in a workflow id as they are.
    """
    return f"cancel-order-{request.order_id}"


def derived_cancellation_id(workflow_id: str, first_run_id: str, submission: int) -> str:
    """Our id for Rebilly's ``PUT /order-cancellations/{id}``: the idempotency key.

    Same inputs, same id, so a retried PUT finds (or re-applies) the
    cancellation its lost predecessor created instead of making a second one.
    Keyed by the run chain's first run id, so a later run of the same workflow
    id (after a revoke) gets a new id, and by the submission number, so a
    reschedule makes a new cancellation. ``oc-`` + 24 base32 chars + ``-N``:
    well within Rebilly's 50 characters and ``^[@~\\-\\.\\w]+$``.
    """
    digest = hashlib.sha256(f"{workflow_id}|{first_run_id}".encode()).digest()
    return f"oc-{base64.b32encode(digest).decode()[:24].lower()}-{submission}"


def is_valid_rebilly_id(value: str) -> bool:
    return len(value) <= REBILLY_ID_MAX_LENGTH and _REBILLY_ID.fullmatch(value) is not None


# -- Rebilly's objects ---------------------------------------------------------


class Money(CamelModel):
    amount: float
    currency: str


class CancellationBody(CamelModel):
    """The request body of ``PUT /order-cancellations/{id}``: only writable fields.

    Rebilly's read-only fields (``id``, ``proratedInvoiceId``, ``appliedInvoiceId``,
    ``canceledTime``, ``lineItemSubtotal``, timestamps, ``_links``) are never sent.
    """

    order_id: str
    status: RebillyStatus
    churn_time: datetime | None = None
    churn_time_policy: ChurnTimePolicy | None = None
    reason: CancellationReason
    canceled_by: CanceledBy
    prorated: bool
    description: str | None = None
    line_items: list[LineItem] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _ignore_dropped_fields(cls, data: Any) -> Any:
        return _without_dropped_fields(data)


class Cancellation(CamelModel):
    """Rebilly's OrderCancellation (only the fields we use are kept)."""

    model_config = CamelModel.model_config | {"extra": "ignore"}

    id: str
    order_id: str
    status: RebillyStatus
    churn_time: datetime | None = None
    churn_time_policy: ChurnTimePolicy | None = None
    reason: str | None = None
    canceled_by: str | None = None
    prorated: bool = False
    line_item_subtotal: Money | None = None
    canceled_time: datetime | None = None
    updated_time: datetime | None = None


# -- activity inputs and outputs ------------------------------------------------


class PutCancellation(CamelModel):
    cancellation_id: str
    body: CancellationBody


class PutResult(CamelModel):
    cancellation: Cancellation
    # 201 (created) or 200 (an existing draft updated / an identical re-create).
    created: bool
    # True when a retry found the cancellation its lost predecessor created.
    recovered: bool = False
    attempt: int = 1


class CancellationRef(CamelModel):
    cancellation_id: str


class CancellationChecked(CamelModel):
    """A final cancellation and how many times Rebilly was asked."""

    cancellation: Cancellation
    checks: int


class ReactivateOrder(CamelModel):
    """Undo a confirmed cancellation with ``POST /order-reactivations``."""

    cancellation_id: str
    order_id: str
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX_LENGTH)

    @field_validator("description", mode="before")
    @classmethod
    def _fit_description(cls, value: str | None) -> str | None:
        return fit_to_limit(value, DESCRIPTION_MAX_LENGTH)


class ReactivationOutcome(StrEnum):
    REACTIVATED = "REACTIVATED"
    # An earlier attempt (or someone else) already revoked it: nothing to do.
    ALREADY_REVOKED = "ALREADY_REVOKED"
    # Too late: Rebilly completed it; a completed cancellation cannot be undone.
    ALREADY_COMPLETED = "ALREADY_COMPLETED"
    # The cancellation completed just before our reactivation reached Rebilly, which
    # then restarted the churned order: active again, with a new service period.
    RESTARTED = "RESTARTED"


class Reactivated(CamelModel):
    outcome: ReactivationOutcome
    cancellation: Cancellation
    reactivation_id: str | None = None


class DraftDeleted(CamelModel):
    cancellation_id: str
    # True when Rebilly no longer had it (an earlier attempt deleted it).
    already_gone: bool = False


# -- the saga's face -------------------------------------------------------------


class OrderCancellationStatus(CamelModel):
    """Everything an operator needs about one order cancellation (the ``status`` query)."""

    workflow_id: str
    phase: SagaPhase
    order_id: str
    customer_id: str | None
    draft: bool = Field(description="preview requested: created as a draft, confirmed later")
    awaiting_confirmation: bool
    cancellation_id: str | None
    rebilly_status: RebillyStatus | None
    churn_time_policy: ChurnTimePolicy | None
    churn_time: datetime | None = Field(description="as resolved by Rebilly once created")
    prorated: bool
    line_item_subtotal: Money | None = Field(
        description="Rebilly's subtotal incl. the proration credit (the draft's preview)"
    )
    submissions: int
    provider_checks: int
    last_error: str | None
    steps: list[StepRecord]
    jeopardy: list[Jeopardy] = Field(
        default_factory=list, description="deadlines neared without being met (saga.jeopardy)"
    )
    # Provider webhooks routed to the saga, each once.
    notices: list[ProviderNotice] = Field(default_factory=list)
