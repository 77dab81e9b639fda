"""Customer churn: one customer leaves on date D, every provider part ends together.

The request carries each part as its single-provider request model, so every
part is validated by exactly the rules of its own saga; the churn adds only what
ties them together (one customer, one date).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from domain.airalo import FutureOrderCancellationRequest, OrderOutcomeRecord, RecreatedFutureOrder
from domain.common import (
    CamelModel,
    FieldProblem,
    InvalidRequest,
    ProviderNotice,
    SagaPhase,
    StepRecord,
    check_schedule,
    clean_identifier,
    problems_from_validation_error,
    schedule_problems,
)
from domain.outcomes import Jeopardy
from domain.rebilly import Money, OrderCancellationRequest
from domain.stn import TerminationRequest, mask_phone_number

_CUSTOMER_ID = re.compile(r"^[\w.@~-]+$")
SET_BY_CHURN = "set by the churn's {what}; leave it out"


class CustomerChurnRequest(CamelModel):
    """Customer ``customerId`` leaves on ``wishDate``: any subset of the three parts.

    * ``stn``: the mobile line to terminate (the pivot: irreversible once executed);
    * ``rebilly``: the billing order to cancel (its options; churn time = ``wishDate``);
    * ``airalo``: pending future eSIM orders; those due after ``wishDate`` are cancelled.
    """

    customer_id: str = Field(min_length=1, max_length=64)
    wish_date: datetime
    stn: TerminationRequest | None = None
    rebilly: OrderCancellationRequest | None = None
    airalo: FutureOrderCancellationRequest | None = None

    @field_validator("customer_id")
    @classmethod
    def _safe_customer_id(cls, value: str) -> str:
        value = clean_identifier(value) or ""
        if not _CUSTOMER_ID.fullmatch(value):
            raise ValueError("may contain only letters, digits and _ - . ~ @")
        return value

    @field_validator("wish_date")
    @classmethod
    def _offset(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must be ISO 8601 with a UTC offset, e.g. 2026-12-01T00:00:00+01:00")
        return value

    @model_validator(mode="after")
    def _parts(self) -> CustomerChurnRequest:
        if self.stn is None and self.rebilly is None and self.airalo is None:
            raise ValueError("give at least one part: stn, rebilly or airalo")
        return self

    def summary(self) -> str:
        parts = []
        if self.stn:
            line = self.stn.subscription_id or mask_phone_number(self.stn.phone_number)
            parts.append(f"line {line}")
        if self.rebilly:
            parts.append(f"billing order {self.rebilly.order_id}")
        if self.airalo:
            parts.append(f"{len(self.airalo.request_ids)} future eSIM order(s)")
        return f"Customer {self.customer_id} churns at {self.wish_date.isoformat()}: " + ", ".join(
            parts
        )


def _part_problems(data: Mapping[str, Any]) -> list[FieldProblem]:
    """Fields a part must not set because the churn sets them for every part."""
    problems = []
    rules = {
        "stn": {"wishDate": "wishDate", "customerId": "customerId"},
        "rebilly": {
            "churnTime": "wishDate",
            "churnTimePolicy": "wishDate",
            "customerId": "customerId",
        },
        "airalo": {"customerId": "customerId"},
    }
    for part, fields in rules.items():
        given = data.get(part)
        if not isinstance(given, Mapping):
            continue
        for field, what in fields.items():
            if given.get(field) is not None:
                problems.append(
                    FieldProblem(field=f"{part}.{field}", rule=SET_BY_CHURN.format(what=what))
                )
        if part == "rebilly" and given.get("draft"):
            problems.append(
                FieldProblem(
                    field="rebilly.draft",
                    rule="the churn saga keeps billing as a draft until the line is terminated",
                )
            )
    return problems


def check_customer_churn_request(request: CustomerChurnRequest, now: datetime) -> None:
    """The rules that depend on the clock, checked once, at the edge."""
    check_schedule("wishDate", request.wish_date, now)


def parse_customer_churn_request(
    data: Mapping[str, Any], now: datetime | None
) -> CustomerChurnRequest:
    """Validate every part with its own saga's rules; report every problem at once.

    ``now`` is the edge's clock for the date rules (:func:`schedule_problems`);
    ``None`` skips them, to read a request accepted earlier (a redelivery).
    """
    problems = _part_problems(data)
    request: CustomerChurnRequest | None = None
    try:
        request = CustomerChurnRequest.model_validate(data)
    except ValidationError as error:
        problems += problems_from_validation_error(error)
    wish = request.wish_date if request else data.get("wishDate")
    problems += schedule_problems("wishDate", wish, now)
    if problems or request is None:
        raise InvalidRequest(problems)
    return request


def churn_workflow_id(request: CustomerChurnRequest) -> str:
    """One churn per customer at a time: a duplicate event attaches to the open run."""
    return f"churn-{request.customer_id}"


class ResolveAction(StrEnum):
    RETRY = "retry"
    MARK_HANDLED = "mark_handled"


class ResolveRequest(CamelModel):
    """An operator's answer to NEEDS_ATTENTION."""

    action: ResolveAction
    note: str | None = Field(default=None, max_length=500)


class PendingAction(CamelModel):
    """Something the saga could not do on its own and still owes."""

    # The provider whose part owes it ("stn", "rebilly", "airalo", ...).
    part: str
    # "undo": compensation of a step before the pivot; "finish": a step after it.
    kind: Literal["undo", "finish"]
    description: str
    error: str | None = None


class StnPartState(CamelModel):
    subscription_id: str | None
    phone_number: str | None = Field(description="masked")
    reference_number: str | None = None
    activation_id: str | None = None
    activation_status: str | None = None
    cancellation_id: str | None = None
    cancellation_status: str | None = None


class RebillyPartState(CamelModel):
    order_id: str
    cancellation_id: str | None = None
    status: str | None = None
    churn_time: datetime | None = None
    line_item_subtotal: Money | None = None


class AiraloPartState(CamelModel):
    outcomes: list[OrderOutcomeRecord] = Field(default_factory=list)
    recreated: list[RecreatedFutureOrder] = Field(default_factory=list)


class CustomerChurnStatus(CamelModel):
    """The churn saga's full account (the ``status`` query)."""

    workflow_id: str
    phase: SagaPhase
    customer_id: str
    wish_date: datetime
    stn: StnPartState | None
    rebilly: RebillyPartState | None
    airalo: AiraloPartState | None
    pending_actions: list[PendingAction]
    # Parts whose effect was undone (or marked handled by an operator).
    undone_parts: list[str]
    # Why the saga compensated (revoked, cancelled, a step failed, sTN ERROR).
    cause: str | None
    last_error: str | None
    steps: list[StepRecord]
    jeopardy: list[Jeopardy] = Field(
        default_factory=list, description="deadlines neared without being met (saga.jeopardy)"
    )
    # Provider webhooks routed to the saga, each once.
    notices: list[ProviderNotice] = Field(default_factory=list)
