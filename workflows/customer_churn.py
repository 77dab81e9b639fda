"""CustomerChurn: customer X leaves on date D; line, billing and eSIM orders end together.

The three provider parts composed around the sTN line as the pivot
(:class:`workflows.pivot_composition.PivotComposition`): billing drafted
(:class:`~workflows.rebilly_billing.RebillyBilling`), the line termination submitted
(:class:`~workflows.stn_line.StnLine`), the eSIM orders due after D cancelled
(:class:`~workflows.airalo_orders.AiraloOrders`); at D the line's DONE finishes
billing, its ERROR undoes every part. The rules, the ordering and why the parts are
activities of one workflow rather than child sagas are in ``docs/sagas.md``.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.churn import CustomerChurnRequest, CustomerChurnStatus
    from domain.common import Provider, SagaKind, SagaQuery

from workflows.airalo_orders import AiraloOrders
from workflows.ledger import SagaLedger
from workflows.parts import ProviderPart
from workflows.pivot_composition import PivotComposition
from workflows.rebilly_billing import RebillyBilling
from workflows.stn_line import StnLine


# Worker Versioning: AUTO_UPGRADE, declared in workflows/versioning.py (why there).
@workflow.defn(name="CustomerChurn")
class CustomerChurnSaga(PivotComposition[CustomerChurnStatus]):
    @workflow.init
    def __init__(self, request: CustomerChurnRequest) -> None:
        self._request = request
        providers = [
            provider
            for provider, given in (
                (Provider.STN, request.stn),
                (Provider.REBILLY, request.rebilly),
                (Provider.AIRALO, request.airalo),
            )
            if given is not None
        ]
        ledger = SagaLedger(SagaKind.CUSTOMER_CHURN, providers)
        self._line = StnLine(request.stn, ledger) if request.stn else None
        self._billing = RebillyBilling(request.rebilly, ledger) if request.rebilly else None
        self._esims = (
            AiraloOrders(request.airalo.request_ids, ledger, keep_due_before=request.wish_date)
            if request.airalo
            else None
        )
        # Prepared in order of reversibility: billing (a draft), the line, eSIMs.
        parts: list[ProviderPart] = [
            part for part in (self._billing, self._line, self._esims) if part is not None
        ]
        self._compose(ledger, request.wish_date, parts, pivot=self._line)

    @workflow.run
    async def run(self, request: CustomerChurnRequest) -> CustomerChurnStatus:
        self._ledger.open(self._wish_date, request.customer_id)
        await self._run_composition()
        return self.status()

    @workflow.query(name=SagaQuery.STATUS)
    def status(self) -> CustomerChurnStatus:
        return CustomerChurnStatus(
            workflow_id=workflow.info().workflow_id,
            phase=self._ledger.phase,
            customer_id=self._request.customer_id,
            wish_date=self._wish_date,
            stn=self._line.state() if self._line else None,
            rebilly=self._billing.state() if self._billing else None,
            airalo=self._esims.state() if self._esims else None,
            pending_actions=list(self._pending),
            undone_parts=self._undone_parts(),
            cause=self._cause,
            last_error=self._ledger.last_error,
            steps=list(self._ledger.steps),
            jeopardy=list(self._ledger.jeopardy),
            notices=list(self._notice_board.received),
        )
