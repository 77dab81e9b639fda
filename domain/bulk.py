"""Bulk operations: one operator request to every saga of a selection.

"sTN announced maintenance on the night of the 31st: move every termination due then
to the 1st"; "reseller X withdrew its churn file: revoke all 4,000". A selection is a
visibility query over running sagas, built from filters (kind, provider, status,
customer, due window) or given raw; the action is the request each saga gets, through
the same rules as ``cancelctl`` (its validator may refuse it, saga by saga).

Pure models and rules, shared by the ``BulkOperation`` workflow, ``cancelctl bulk`` and
``/v1/bulk-operations``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, ValidationError, model_validator
from temporalio import activity

from domain import search_attributes as sa
from domain.churn import ResolveAction
from domain.common import (
    END,
    CamelModel,
    DateAsSent,
    InvalidRequest,
    OperatorRequestKind,
    Provider,
    SagaKind,
    SagaPhase,
    problems_from_validation_error,
    schedule_problems,
)

#: The memo entry that names the operation a run of ``BulkOperation`` belongs to.
MEMO_OPERATION_ID = "operationId"
#: Over this many sagas, ``cancelctl bulk`` needs ``--yes`` when it cannot ask.
CONFIRM_ABOVE = 1000
#: Refusals and failures kept one by one in the report (counts are kept for all).
REPORT_DETAIL_LIMIT = 1000
#: Provider calls one saga makes for each action, at most (sTN's reschedule: cancel,
#: follow the cancellation, read the termination, resubmit): what paces an operation so
#: its sagas' calls stay within their lanes' limits.
CALLS_PER_SAGA = {"revoke": 3, "reschedule": 4, "cancel": 3, "resolve": 3}
#: A customer id a selection may name (it goes into a visibility query unescaped).
CUSTOMER_ID_PATTERN = rf"^[A-Za-z0-9_.@~:+-]{{1,128}}{END}"
_SAFE_VALUE = re.compile(CUSTOMER_ID_PATTERN)


class BulkAction(StrEnum):
    """What every selected saga is asked (``cancel`` cancels its workflow: it compensates)."""

    REVOKE = "revoke"
    RESCHEDULE = "reschedule"
    CANCEL = "cancel"
    RESOLVE = "resolve"


class Selection(CamelModel):
    """Which running sagas: filters, all of which must hold, or a raw visibility query."""

    kind: SagaKind | None = None
    provider: Provider | None = None
    status: SagaPhase | None = None
    customer_id: str | None = Field(default=None, min_length=1, max_length=64)
    due_after: DateAsSent | None = None
    due_before: DateAsSent | None = None
    # Temporal's visibility syntax, e.g. "CancellationKind = 'CUSTOMER_CHURN'"; alone.
    query: str | None = Field(default=None, min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _one_way(self) -> Selection:
        filters = (self.kind, self.provider, self.status, self.customer_id)
        if self.query is not None and (any(filters) or self.due_after or self.due_before):
            raise ValueError("give a query or filters, not both")
        if self.customer_id is not None and not _SAFE_VALUE.fullmatch(self.customer_id):
            raise ValueError("customerId may contain only letters, digits and _ - . ~ @ : +")
        for name, value in (("dueAfter", self.due_after), ("dueBefore", self.due_before)):
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} must carry a UTC offset")
        if self.due_after and self.due_before and self.due_after >= self.due_before:
            raise ValueError("dueAfter must be before dueBefore")
        return self

    def visibility_query(self, task_queue: str) -> str:
        """The query over the running sagas of ``task_queue`` (values validated above:
        nothing to escape; the task queue is the deployment's own setting)."""
        clauses = [
            f"{sa.CANCELLATION_KIND.name} IS NOT NULL",
            "ExecutionStatus = 'Running'",
            f"TaskQueue = '{task_queue}'",
        ]
        if self.query is not None:
            return " AND ".join([*clauses, f"({self.query})"])
        if self.kind is not None:
            clauses.append(f"{sa.CANCELLATION_KIND.name} = '{self.kind.value}'")
        if self.provider is not None:
            clauses.append(f"{sa.CANCELLATION_PROVIDERS.name} = '{self.provider.value}'")
        if self.status is not None:
            clauses.append(f"{sa.CANCELLATION_STATUS.name} = '{self.status.value}'")
        if self.customer_id is not None:
            clauses.append(f"{sa.CUSTOMER_ID.name} = '{self.customer_id}'")
        if self.due_after is not None:
            clauses.append(f"{sa.WISH_DATE.name} >= '{_iso(self.due_after)}'")
        if self.due_before is not None:
            clauses.append(f"{sa.WISH_DATE.name} < '{_iso(self.due_before)}'")
        return " AND ".join(clauses)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class BulkRequest(CamelModel):
    """A bulk operation as asked (``POST /v1/bulk-operations``, ``cancelctl bulk``)."""

    action: BulkAction
    selection: Selection
    # reschedule: the new wish date (the same date rules as a single reschedule).
    wish_date: DateAsSent | None = None
    # revoke: the reason sent to each provider; resolve: the note.
    reason: str | None = Field(default=None, max_length=164)
    # resolve: retry what each saga owes, or mark it handled.
    resolve_action: ResolveAction | None = None
    # List what would be touched and what each saga would refuse; change nothing.
    dry_run: bool = Field(default=False, strict=True)

    @model_validator(mode="after")
    def _action_fields(self) -> BulkRequest:
        if self.action == BulkAction.RESCHEDULE and self.wish_date is None:
            raise ValueError("a reschedule needs wishDate")
        if self.action != BulkAction.RESCHEDULE and self.wish_date is not None:
            raise ValueError("wishDate is only for a reschedule")
        if self.action == BulkAction.RESOLVE and self.resolve_action is None:
            raise ValueError("a resolve needs resolveAction (retry or mark_handled)")
        if self.action != BulkAction.RESOLVE and self.resolve_action is not None:
            raise ValueError("resolveAction is only for a resolve")
        return self


def parse_bulk_request(data: Mapping[str, Any], now: datetime) -> BulkRequest:
    """Every problem at once: the model's and the reschedule date's rules."""
    problems = schedule_problems("wishDate", data.get("wishDate"), now)
    try:
        request = BulkRequest.model_validate(data)
    except ValidationError as error:
        raise InvalidRequest(problems + problems_from_validation_error(error)) from None
    if problems:
        raise InvalidRequest(problems)
    return request


class OperatorCheck(CamelModel):
    """An operator request to try on a saga's validator without sending it."""

    kind: OperatorRequestKind
    wish_date: datetime | None = None
    reason: str | None = None
    resolve_action: ResolveAction | None = None


class SagaOutcome(StrEnum):
    APPLIED = "applied"
    # The saga's validator refused (or it had ended): its reason is kept.
    REFUSED = "refused"
    # Temporal or the saga failed to answer after retries.
    FAILED = "failed"
    # Dry run: what the saga would do.
    WOULD_APPLY = "would_apply"
    WOULD_REFUSE = "would_refuse"


class SagaResult(CamelModel):
    """What one saga answered (``detail``: the refusal, the failure, or its phase after)."""

    workflow_id: str
    outcome: SagaOutcome
    detail: str = ""


class BulkProgress(CamelModel):
    """Where a bulk operation is, and its report so far (the final report once done)."""

    operation_id: str
    action: BulkAction
    query: str
    dry_run: bool
    # "running", "done", "cancelled" (what was applied stays applied).
    state: str
    # The selection's size when the operation started (visibility's count).
    selected: int
    processed: int = 0
    counts: dict[SagaOutcome, int] = Field(default_factory=dict)
    # Refusals, failures and (dry run) would-refuses one by one, the first ones.
    details: list[SagaResult] = Field(default_factory=list)
    started_at: datetime
    finished_at: datetime | None = None
    # Updates per second the operation allowed itself (its lanes' limits), if paced.
    pace_per_second: float | None = None

    def record(self, result: SagaResult) -> None:
        self.processed += 1
        self.counts[result.outcome] = self.counts.get(result.outcome, 0) + 1
        kept = result.outcome not in (SagaOutcome.APPLIED, SagaOutcome.WOULD_APPLY)
        if kept and len(self.details) < REPORT_DETAIL_LIMIT:
            self.details.append(result)


# -- the bulk operation's activities (``activities/bulk.py``) ------------------------------


class BulkActivity(StrEnum):
    PLAN = "bulk.plan"
    LIST_PAGE = "bulk.list_page"
    APPLY = "bulk.apply"


class BulkPlan(CamelModel):
    """What the operation starts from: the selection's size, and each lane's limit."""

    selected: int
    lane_limits: dict[str, float] = Field(default_factory=dict)


class SelectionPage(CamelModel):
    workflow_ids: list[str]
    # Opaque (base64): where the next page starts; None after the last.
    next_page_token: str | None = None


class ListSelection(CamelModel):
    query: str
    page_size: int = Field(ge=1, le=1000)
    next_page_token: str | None = None


class ApplyBatch(CamelModel):
    """One batch of sagas to send the operation's request to (or to try it on, dry)."""

    operation_id: str
    request: BulkRequest
    workflow_ids: list[str]


class BulkCalls:
    """The bulk operation's activities (implemented by ``activities.bulk.BulkSteering``)."""

    @activity.defn(name=BulkActivity.PLAN)
    async def plan(self, query: str) -> BulkPlan:
        raise NotImplementedError

    @activity.defn(name=BulkActivity.LIST_PAGE)
    async def list_page(self, request: ListSelection) -> SelectionPage:
        raise NotImplementedError

    @activity.defn(name=BulkActivity.APPLY)
    async def apply(self, batch: ApplyBatch) -> list[SagaResult]:
        raise NotImplementedError


class BulkJob(CamelModel):
    """The ``BulkOperation`` workflow's input, first and after each continue-as-new."""

    operation_id: str
    request: BulkRequest
    query: str
    progress: BulkProgress | None = None
    next_page_token: str | None = None


def bulk_pace(action: BulkAction, lane_limits: Mapping[str, float]) -> float | None:
    """Sagas per second an operation may steer so that their calls stay within every
    limited lane (each saga makes up to :data:`CALLS_PER_SAGA` calls); None: no limit."""
    if not lane_limits:
        return None
    return min(lane_limits.values()) / CALLS_PER_SAGA[action.value]
