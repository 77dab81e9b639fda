"""Nimbus's workflow side: its steps and its part (``workflows/nimbus_steps.py`` and
``workflows/nimbus_plan.py`` in the product). Workflow code: no I/O."""

from __future__ import annotations

import hashlib
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from tests.fast.nimbus.domain import (
        PROVIDER,
        CancellationRef,
        CancellationStatus,
        NimbusCalls,
        NimbusPlanState,
        PlanCancellation,
        ScheduleCancellation,
    )

from workflows.ledger import SagaLedger, describe_failure
from workflows.parts import ProviderPart, StepFailed, TooLate
from workflows.provider_calls import call, poll

# -- the steps: every call through provider_calls, so Nimbus gets the product's
# timeouts and retries like any provider ------------------------------------------------


async def schedule_cancellation(request: ScheduleCancellation) -> PlanCancellation:
    return await call(NimbusCalls.schedule_cancellation, request, "Nimbus POST cancellation")


async def await_effective(cancellation_id: str) -> PlanCancellation:
    ref = CancellationRef(cancellation_id=cancellation_id)
    return await poll(NimbusCalls.await_effective, ref, "Nimbus GET cancellation until effective")


async def withdraw_cancellation(cancellation_id: str) -> PlanCancellation:
    ref = CancellationRef(cancellation_id=cancellation_id)
    return await call(NimbusCalls.withdraw_cancellation, ref, "Nimbus DELETE cancellation")


# -- the part -------------------------------------------------------------------------


class NimbusPlan(ProviderPart):
    """Nimbus: the cancellation of one storage plan; withdrawn to undo, until effective."""

    name = PROVIDER

    def __init__(self, plan_id: str, ledger: SagaLedger) -> None:
        super().__init__(ledger)
        self.plan_id = plan_id
        self.cancellation: PlanCancellation | None = None
        self._schedules = 0

    async def prepare(self, wish_date: datetime) -> None:
        self._schedules += 1
        info = workflow.info()
        key = f"{info.workflow_id}/{info.run_id}/{self._schedules}".encode()
        request = ScheduleCancellation(
            plan_id=self.plan_id,
            effective_at=wish_date,
            reference=hashlib.sha256(key).hexdigest()[:16],
        )
        self.cancellation = await schedule_cancellation(request)
        self._ledger.record("plan_scheduled", f"Nimbus cancellation {self.cancellation.id}")

    async def reschedule(self, wish_date: datetime) -> None:
        await self.undo(f"rescheduled to {wish_date.isoformat()}")
        await self.prepare(wish_date)

    async def await_effective(self) -> PlanCancellation:
        assert self.cancellation is not None
        self.cancellation = await await_effective(self.cancellation.id)
        return self.cancellation

    async def undo(self, cause: str) -> None:
        cancellation = self.cancellation
        if cancellation is None or cancellation.status == CancellationStatus.WITHDRAWN:
            return
        if cancellation.status == CancellationStatus.EFFECTIVE:
            raise TooLate(f"Nimbus cancellation {cancellation.id} is already effective")
        try:
            self.cancellation = await withdraw_cancellation(cancellation.id)
        except ActivityError as error:
            raise StepFailed(describe_failure(error)) from None
        self._ledger.record("plan_withdrawn", f"Nimbus cancellation {cancellation.id}: {cause}")

    async def finish(self) -> None:
        try:
            await self.await_effective()
        except ActivityError as error:
            raise StepFailed(describe_failure(error)) from None

    def state(self) -> NimbusPlanState:
        cancellation = self.cancellation
        return NimbusPlanState(
            plan_id=self.plan_id,
            cancellation_id=cancellation.id if cancellation else None,
            status=cancellation.status if cancellation else None,
            effective_at=cancellation.effective_at if cancellation else None,
        )
