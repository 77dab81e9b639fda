"""Nimbus's models and rules (``domain/nimbus.py`` in the product): pure, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import Field, ValidationError
from temporalio import activity

from domain.common import (
    CamelModel,
    InvalidRequest,
    SagaPhase,
    StepRecord,
    problems_from_validation_error,
    schedule_problems,
)
from domain.stn import TerminationRequest

PROVIDER = "nimbus"
PLAN_CANCELLATION = "NIMBUS_PLAN_CANCELLATION"
LINE_AND_PLAN = "NIMBUS_LINE_AND_PLAN"


class NimbusActivity(StrEnum):
    SCHEDULE_CANCELLATION = "nimbus.schedule_cancellation"
    AWAIT_EFFECTIVE = "nimbus.await_effective"
    WITHDRAW_CANCELLATION = "nimbus.withdraw_cancellation"


class CancellationStatus(StrEnum):
    SCHEDULED = "scheduled"
    EFFECTIVE = "effective"
    WITHDRAWN = "withdrawn"


class PlanCancellationRequest(CamelModel):
    """Cancel storage plan ``planId`` at ``wishDate``."""

    plan_id: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9-]+$")
    wish_date: datetime
    customer_id: str | None = Field(default=None, max_length=64)

    def summary(self) -> str:
        return f"Cancel Nimbus plan {self.plan_id} at {self.wish_date.isoformat()}"


def parse_plan_cancellation(
    data: Mapping[str, Any], now: datetime | None
) -> PlanCancellationRequest:
    return _parse_dated(PlanCancellationRequest, data, now)


class LineAndPlanRequest(CamelModel):
    """A customer leaves: the sTN line (the pivot) and the Nimbus plan end together."""

    customer_id: str = Field(min_length=1, max_length=64)
    wish_date: datetime
    stn: TerminationRequest
    plan_id: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9-]+$")

    def summary(self) -> str:
        return f"Customer {self.customer_id} leaves at {self.wish_date.isoformat()}"


def parse_line_and_plan(data: Mapping[str, Any], now: datetime | None) -> LineAndPlanRequest:
    return _parse_dated(LineAndPlanRequest, data, now)


M = TypeVar("M", bound=CamelModel)


def _parse_dated(model: type[M], data: Mapping[str, Any], now: datetime | None) -> M:
    """Every problem at once: the model's and the date rules (``now=None`` skips those)."""
    problems = schedule_problems("wishDate", data.get("wishDate"), now)
    try:
        request = model.model_validate(data)
    except ValidationError as error:
        raise InvalidRequest(problems + problems_from_validation_error(error)) from None
    if problems:
        raise InvalidRequest(problems)
    return request


# -- activity inputs and outputs --------------------------------------------------------


class ScheduleCancellation(CamelModel):
    plan_id: str
    effective_at: datetime
    # Derived from the run: a retried call is recognised by Nimbus (its idempotency key).
    reference: str


class CancellationRef(CamelModel):
    cancellation_id: str


class PlanCancellation(CamelModel):
    id: str
    plan_id: str
    status: CancellationStatus
    effective_at: datetime


class NimbusPlanState(CamelModel):
    plan_id: str
    cancellation_id: str | None = None
    status: CancellationStatus | None = None
    effective_at: datetime | None = None


class PlanCancellationStatus(CamelModel):
    workflow_id: str
    phase: SagaPhase
    wish_date: datetime
    plan: NimbusPlanState
    last_error: str | None
    steps: list[StepRecord]


class LineAndPlanStatus(CamelModel):
    workflow_id: str
    phase: SagaPhase
    wish_date: datetime
    plan: NimbusPlanState
    line_activation_status: str | None
    undone_parts: list[str]
    pending_parts: list[str]
    cause: str | None
    steps: list[StepRecord]


# -- the activities' declarations (``domain/provider_activities.py``) --------------------


class NimbusCalls:
    """Nimbus's storage API (implemented by ``activities.py``'s fakes here)."""

    @activity.defn(name=NimbusActivity.SCHEDULE_CANCELLATION)
    async def schedule_cancellation(self, request: ScheduleCancellation) -> PlanCancellation:
        raise NotImplementedError

    @activity.defn(name=NimbusActivity.AWAIT_EFFECTIVE)
    async def await_effective(self, request: CancellationRef) -> PlanCancellation:
        raise NotImplementedError

    @activity.defn(name=NimbusActivity.WITHDRAW_CANCELLATION)
    async def withdraw_cancellation(self, request: CancellationRef) -> PlanCancellation:
        raise NotImplementedError
