"""Nimbus's sagas (``workflows/plan_cancellation.py`` in the product): its part composed
with the steering kernel, and with the sTN line around it as the pivot."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.common import (
        Provider,
        RescheduleRequest,
        RevokeRequest,
        SagaPhase,
        SagaQuery,
    )
    from tests.fast.nimbus.domain import (
        LINE_AND_PLAN,
        PLAN_CANCELLATION,
        PROVIDER,
        CancellationStatus,
        LineAndPlanRequest,
        LineAndPlanStatus,
        PlanCancellationRequest,
        PlanCancellationStatus,
    )

from tests.fast.nimbus.part import NimbusPlan
from workflows.ledger import SagaLedger
from workflows.operator_updates import Reschedulable
from workflows.parts import StepFailed
from workflows.pivot_composition import PivotComposition
from workflows.steering import Refused, RequestHandlers, Steering
from workflows.stn_line import StnLine


@workflow.defn(name="NimbusPlanCancellation")
class PlanCancellationSaga(Reschedulable[PlanCancellationStatus]):
    """Schedule the plan's cancellation → wait for the date → poll until effective."""

    @workflow.init
    def __init__(self, request: PlanCancellationRequest) -> None:
        self._request = request
        self._wish_date = request.wish_date
        self._ledger = SagaLedger(PLAN_CANCELLATION, [PROVIDER])
        self._steering = Steering(self._ledger)
        self._plan = NimbusPlan(request.plan_id, self._ledger)

    @workflow.run
    async def run(self, request: PlanCancellationRequest) -> PlanCancellationStatus:
        self._ledger.open(self._wish_date, request.customer_id)
        await self._steering.run(self._steps, compensate=self._compensate)
        return self.status()

    async def _steps(self) -> None:
        self._ledger.enter(SagaPhase.SUBMITTING, f"asking Nimbus to cancel {self._request.plan_id}")
        await self._plan.prepare(self._wish_date)
        self._steering.scheduled(f"effective at {self._wish_date.isoformat()}")
        await self._steering.drive(
            self._advance, RequestHandlers(revoke=self._revoke, reschedule=self._reschedule)
        )

    async def _advance(self) -> None:
        await self._steering.wait_then_poll(
            self._poll, due=self._wish_date, reached="wish date reached; asking Nimbus"
        )

    async def _poll(self) -> None:
        final = await self._steering.poll_interruptibly(self._plan.await_effective())
        if final is not None:
            self._ledger.enter(SagaPhase.COMPLETED, f"Nimbus cancellation {final.id} is effective")

    async def _revoke(self, request: RevokeRequest) -> None:
        previous = self._ledger.phase
        self._ledger.enter(SagaPhase.REVOKING, request.reason or "revoked by operator")
        try:
            await self._plan.undo(request.reason or "revoked by operator")
        except StepFailed as failed:
            self._ledger.note_error("revoke_refused", str(failed))
            self._ledger.enter(previous, "revoke refused; carrying on")
            raise Refused(f"cannot revoke: {failed}") from None
        self._ledger.enter(SagaPhase.REVOKED, "the plan's cancellation was withdrawn")

    async def _reschedule(self, request: RescheduleRequest) -> None:
        self._ledger.enter(SagaPhase.RESCHEDULING, f"moving to {request.wish_date.isoformat()}")
        await self._plan.reschedule(request.wish_date)
        self._wish_date = request.wish_date
        self._ledger.move_wish_date(request.wish_date)
        self._steering.scheduled(f"effective at {self._wish_date.isoformat()}")

    async def _compensate(self, reason: str) -> None:
        self._ledger.enter(SagaPhase.COMPENSATING, reason)
        try:
            await self._plan.undo(reason)
        except StepFailed as failed:
            self._ledger.fail(SagaPhase.FAILED, f"{reason}; could not undo: {failed}")
            return
        self._ledger.enter(SagaPhase.REVOKED, f"{reason}; the plan's cancellation was withdrawn")

    def _provider_acted(self) -> str | None:
        cancellation = self._plan.cancellation
        if cancellation is not None and cancellation.status == CancellationStatus.EFFECTIVE:
            return "Nimbus already cancelled the plan"
        return None

    @workflow.query(name=SagaQuery.STATUS)
    def status(self) -> PlanCancellationStatus:
        return PlanCancellationStatus(
            workflow_id=workflow.info().workflow_id,
            phase=self._ledger.phase,
            wish_date=self._wish_date,
            plan=self._plan.state(),
            last_error=self._ledger.last_error,
            steps=list(self._ledger.steps),
        )


@workflow.defn(name="NimbusLineAndPlan")
class LineAndPlanSaga(PivotComposition[LineAndPlanStatus]):
    """The churn's shape with another provider: the plan, then the line as the pivot."""

    @workflow.init
    def __init__(self, request: LineAndPlanRequest) -> None:
        ledger = SagaLedger(LINE_AND_PLAN, [Provider.STN, PROVIDER])
        self._line = StnLine(request.stn, ledger)
        self._plan = NimbusPlan(request.plan_id, ledger)
        # In order of reversibility: a withdrawn plan cancellation leaves nothing behind.
        self._compose(ledger, request.wish_date, [self._plan, self._line], pivot=self._line)

    @workflow.run
    async def run(self, request: LineAndPlanRequest) -> LineAndPlanStatus:
        self._ledger.open(self._wish_date, request.customer_id)
        await self._run_composition()
        return self.status()

    @workflow.query(name=SagaQuery.STATUS)
    def status(self) -> LineAndPlanStatus:
        activation = self._line.activation
        return LineAndPlanStatus(
            workflow_id=workflow.info().workflow_id,
            phase=self._ledger.phase,
            wish_date=self._wish_date,
            plan=self._plan.state(),
            line_activation_status=activation.status if activation else None,
            undone_parts=self._undone_parts(),
            pending_parts=[action.part for action in self._pending],
            cause=self._cause,
            steps=list(self._ledger.steps),
        )
