"""The saga's own account of itself: phase, audit trail, last error.

Every phase change is written three ways at once, so they can never disagree:
the ``status`` query's step list, the ``CancellationStatus`` search attribute
(what operators filter on in the UI) and the run's current details (what the UI
shows on the run's page).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

with workflow.unsafe.imports_passed_through():
    from domain import search_attributes as sa
    from domain.common import Provider, SagaKind, SagaPhase, StepRecord


class SagaLedger:
    def __init__(self, kind: SagaKind, providers: list[Provider]) -> None:
        self.kind = kind
        self.providers = providers
        self.phase = SagaPhase.RECEIVED
        self.steps: list[StepRecord] = []
        self.last_error: str | None = None

    def open(self, wish_date: datetime | None, customer_id: str | None) -> None:
        """Publish the search attributes a new run starts with."""
        updates: list[SearchAttributeUpdate[Any]] = [
            sa.CANCELLATION_KIND.value_set(self.kind.value),
            sa.CANCELLATION_PROVIDERS.value_set([p.value for p in self.providers]),
            sa.CANCELLATION_STATUS.value_set(self.phase.value),
            sa.WISH_DATE.value_set(wish_date or workflow.now()),
        ]
        if customer_id:
            updates.append(sa.CUSTOMER_ID.value_set(customer_id))
        workflow.upsert_search_attributes(updates)
        self.record("received", f"{self.kind.value} saga started")

    def record(self, step: str, detail: str = "") -> None:
        self.steps.append(StepRecord(at=workflow.now(), step=step, detail=detail))

    def enter(self, phase: SagaPhase, detail: str) -> None:
        self.phase = phase
        self.record(phase.value.lower(), detail)
        workflow.upsert_search_attributes([sa.CANCELLATION_STATUS.value_set(phase.value)])
        workflow.set_current_details(f"**{phase.value}**: {detail}")

    def fail(self, phase: SagaPhase, error: str) -> None:
        self.last_error = error
        self.enter(phase, error)

    def note_error(self, step: str, error: str) -> None:
        """An error the saga survived (e.g. a refused revoke): recorded, phase kept."""
        self.last_error = error
        self.record(step, error)

    def move_wish_date(self, wish_date: datetime) -> None:
        workflow.upsert_search_attributes([sa.WISH_DATE.value_set(wish_date)])


def describe_failure(error: BaseException) -> str:
    """The most specific message in a failure chain (the provider's words, if any)."""
    message = str(error)
    cause: BaseException | None = error
    while cause is not None:
        if str(cause):
            message = str(cause)
        cause = cause.__cause__
    return message
