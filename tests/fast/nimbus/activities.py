"""Nimbus's activities, faked (``activities/nimbus.py`` in the product is an activity
class over an injected httpx client, like ``activities/stn.py``): they answer like
Nimbus and record every call."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.common import ErrorType
from tests.fast.nimbus.domain import (
    CancellationRef,
    CancellationStatus,
    NimbusActivity,
    PlanCancellation,
    ScheduleCancellation,
)


class FakeNimbus:
    def __init__(self) -> None:
        self.cancellations: dict[str, PlanCancellation] = {}
        # (activity, its input, when it was called), in order.
        self.calls: list[tuple[str, Any, datetime]] = []

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]

    def first(self, name: str) -> datetime:
        """When ``name`` was first called."""
        return next(at for called, _, at in self.calls if called == name)

    def _record(self, name: str, request: Any) -> None:
        self.calls.append((name, request, datetime.now(UTC)))

    @activity.defn(name=NimbusActivity.SCHEDULE_CANCELLATION)
    async def schedule_cancellation(self, request: ScheduleCancellation) -> PlanCancellation:
        self._record(NimbusActivity.SCHEDULE_CANCELLATION, request)
        cancellation = PlanCancellation(
            id=f"nc-{request.reference}",
            plan_id=request.plan_id,
            status=CancellationStatus.SCHEDULED,
            effective_at=request.effective_at,
        )
        self.cancellations[cancellation.id] = cancellation
        return cancellation

    @activity.defn(name=NimbusActivity.AWAIT_EFFECTIVE)
    async def await_effective(self, request: CancellationRef) -> PlanCancellation:
        self._record(NimbusActivity.AWAIT_EFFECTIVE, request)
        current = self.cancellations[request.cancellation_id]
        if current.status == CancellationStatus.SCHEDULED:
            if datetime.now(UTC) < current.effective_at:
                # Pending: retried by the poll's retry policy, as every provider poll is.
                raise ApplicationError("not effective yet", type=ErrorType.PROVIDER_UNAVAILABLE)
            current = current.model_copy(update={"status": CancellationStatus.EFFECTIVE})
            self.cancellations[current.id] = current
        return current

    @activity.defn(name=NimbusActivity.WITHDRAW_CANCELLATION)
    async def withdraw_cancellation(self, request: CancellationRef) -> PlanCancellation:
        self._record(NimbusActivity.WITHDRAW_CANCELLATION, request)
        current = self.cancellations[request.cancellation_id]
        if current.status == CancellationStatus.EFFECTIVE:
            raise ApplicationError(
                f"cancellation {current.id} is effective",
                type=ErrorType.PROVIDER_REJECTED,
                non_retryable=True,
            )
        current = current.model_copy(update={"status": CancellationStatus.WITHDRAWN})
        self.cancellations[current.id] = current
        return current

    def activities(self) -> list[Any]:
        return [self.schedule_cancellation, self.await_effective, self.withdraw_cancellation]
