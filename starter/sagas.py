"""Start and steer sagas: the one implementation behind cancelctl (and the HTTP API).

Everything here validates first and talks to Temporal second, so bad input
never starts anything. :func:`start` starts a saga of any kind from its entry in
:mod:`starter.kinds`.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from config.settings import OrchestratorSettings
from domain import search_attributes as sa
from domain.churn import ResolveAction, ResolveRequest
from domain.common import (
    CamelModel,
    FieldProblem,
    InvalidRequest,
    OperatorRequestKind,
    RescheduleRequest,
    RevokeRequest,
    SagaPhase,
    SagaQuery,
    parse_request,
)
from domain.lanes import MEMO_OBSERVATION_SPREAD
from domain.stn import check_future_wish_date
from starter import lanes
from starter.kinds import KINDS


@dataclass(frozen=True)
class StartedSaga:
    workflow_id: str
    run_id: str | None
    # True when a run for this business key was already open: nothing new started.
    already_running: bool
    # True when this delivery (idempotency key) had already started this run: a
    # redelivery, answered with that run whether it is open or closed.
    duplicate_delivery: bool = False
    # True when the business key's last run already carried the request out (phase
    # COMPLETED): answered with that run, nothing new started.
    already_completed: bool = False


# -- deliveries: at most one saga per idempotency key ----------------------------------

#: Memo fields of a run started by a keyed delivery (the HTTP API's starts and events).
MEMO_IDEMPOTENCY_KEY = "idempotencyKey"
MEMO_REQUEST_DIGEST = "requestDigest"
_HEX_DIGEST = re.compile(r"[0-9a-f]{16,128}")


@dataclass(frozen=True)
class Delivery:
    """Who asked, once: a caller's idempotency key (already hashed) and what it asked.

    ``key`` is a keyed hash, never the caller's raw key (which might carry PII);
    ``request_digest`` is the SHA-256 of the validated request, so the same key
    with another payload is told apart from a redelivery.
    """

    key: str
    request_digest: str

    def __post_init__(self) -> None:
        # The key goes into a visibility query: a hex digest needs no escaping.
        if not _HEX_DIGEST.fullmatch(self.key):
            raise ValueError("a delivery key must be a hex digest (hash the caller's key)")

    def memo(self) -> dict[str, str]:
        return {MEMO_IDEMPOTENCY_KEY: self.key, MEMO_REQUEST_DIGEST: self.request_digest}


class DeliveryConflict(Exception):
    """The idempotency key already started a saga with a different request."""

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(
            f"this idempotency key already started saga {workflow_id} with a different "
            "request; send a new key for a new request"
        )


async def _delivered_run(execution: WorkflowExecution, delivery: Delivery) -> StartedSaga | None:
    """The run ``execution`` as the answer to ``delivery``, if that delivery started it."""
    memo = await execution.memo()
    if memo.get(MEMO_IDEMPOTENCY_KEY) != delivery.key:
        return None
    if memo.get(MEMO_REQUEST_DIGEST) != delivery.request_digest:
        raise DeliveryConflict(execution.id)
    return StartedSaga(
        execution.id,
        execution.run_id,
        already_running=execution.status == WorkflowExecutionStatus.RUNNING,
        duplicate_delivery=True,
    )


async def find_delivery(
    client: Client, latest: WorkflowExecution | None, delivery: Delivery
) -> StartedSaga | None:
    """The run this delivery already started, if any (``DeliveryConflict`` if it differs).

    First the business key's ``latest`` run (read with ``describe()``: strongly
    consistent, so a redelivery right after the start is caught). Then every run
    carrying the key (the ``IdempotencyKey`` search attribute): this catches an
    older run of the same business key and a run under another business key, but
    visibility is eventually consistent, so a run started a moment ago may be missed.
    """
    if latest is not None:
        found = await _delivered_run(latest, delivery)
        if found is not None:
            return found
    query = f"{sa.IDEMPOTENCY_KEY.name} = '{delivery.key}'"  # hex (checked): nothing to escape
    async for execution in client.list_workflows(query, limit=1):
        return await _delivered_run(execution, delivery)
    return None


async def latest_run(client: Client, workflow_id: str) -> WorkflowExecution | None:
    """The business key's latest run, or None if it never had one."""
    try:
        return await client.get_workflow_handle(workflow_id).describe()
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
        return None


def _completed_run(last: WorkflowExecution | None) -> StartedSaga | None:
    """The business key's ``last`` run, if it carried the request out (phase COMPLETED).

    The id-reuse policy, the same for every kind: a request repeated after its saga
    COMPLETED (a redelivered event, a second `terminate` for a line) is answered with
    that saga; a new run would ask the provider for what is already done and end
    FAILED, hiding that it was done. After a run that did not carry it out (REVOKED,
    FAILED, COMPENSATED, or a cancelled workflow) a new request starts a new run.
    """
    if last is None:
        return None
    phase = last.typed_search_attributes.get(sa.CANCELLATION_STATUS)
    if last.status == WorkflowExecutionStatus.RUNNING or phase != SagaPhase.COMPLETED:
        return None
    return StartedSaga(last.id, last.run_id, already_running=False, already_completed=True)


async def _start_or_attach(
    client: Client,
    run: Callable[[Any, Any], Awaitable[Any]],
    request: Any,
    workflow_id: str,
    settings: OrchestratorSettings,
    summary: str,
    delivery: Delivery | None = None,
    routing: Sequence[SearchAttributePair[Any]] = (),
) -> StartedSaga:
    """Start a saga under its business key, or attach to the open run of that key.

    An open run is never doubled: the duplicate request attaches to it. A run that
    carried the request out (phase COMPLETED) answers a repeat of it; after one that
    did not (REVOKED, FAILED, COMPENSATED) a new run may start. With a
    ``delivery``, a run that delivery already started (open or closed) is the
    answer, and a new run records the delivery in its memo and search attributes.
    ``routing``: the search attributes provider webhooks find the run by.
    """
    latest = await latest_run(client, workflow_id)  # one read serves both checks
    if delivery is not None:
        previous = await find_delivery(client, latest, delivery)
        if previous is not None:
            return previous
    completed = _completed_run(latest)
    if completed is not None:
        return completed
    memo: dict[str, Any] = delivery.memo() if delivery else {}
    spreads = await lanes.observation_spreads(client, settings.task_queue)
    if spreads:
        # A wave's first polls spread over its lanes' time (domain/lanes.py): fixed now.
        memo[MEMO_OBSERVATION_SPREAD] = spreads
    # The read above and this start are two calls: a run that was open (or absent) when
    # read may have COMPLETED since. Unless a closed run was read (a new run may follow
    # it), the start refuses any existing run, and a refusal is read again.
    closed = latest is not None and latest.status != WorkflowExecutionStatus.RUNNING
    while True:
        try:
            handle = await client.start_workflow(
                run,
                request,
                id=workflow_id,
                task_queue=settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE
                if closed
                else WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=summary,
                memo=memo or None,
                search_attributes=TypedSearchAttributes(
                    [
                        *routing,
                        *(
                            [SearchAttributePair(sa.IDEMPOTENCY_KEY, delivery.key)]
                            if delivery
                            else []
                        ),
                    ]
                ),
            )
        except WorkflowAlreadyStartedError as existing:
            if closed:
                return StartedSaga(workflow_id, existing.run_id, already_running=True)
            latest = await latest_run(client, workflow_id)
            completed = _completed_run(latest)
            if completed is not None:
                return completed
            if latest is None or latest.status == WorkflowExecutionStatus.RUNNING:
                return StartedSaga(workflow_id, existing.run_id, already_running=True)
            closed = True  # it closed without carrying the request out: a new run follows
            continue
        return StartedSaga(workflow_id, handle.result_run_id, already_running=False)


async def start(
    client: Client,
    kind: str,
    request: BaseModel,
    settings: OrchestratorSettings,
    *,
    now: datetime | None = None,
    delivery: Delivery | None = None,
) -> StartedSaga:
    """Start (or attach to) the saga of ``kind`` (see :mod:`starter.kinds`) for ``request``.

    The kind's rules that depend on the clock first (``InvalidRequest``: nothing
    starts), then its business key: :func:`_start_or_attach` does the rest, the same
    for every kind, with the kind's summary and the search attributes its provider
    webhooks are routed by. ``now``: the clock (default: the current time).
    """
    spec = KINDS[kind]
    if not isinstance(request, spec.model):
        raise TypeError(
            f"saga kind {kind} takes a {spec.model.__name__}, not a {type(request).__name__}"
        )
    spec.check(request, now or datetime.now(UTC))
    return await _start_or_attach(
        client,
        spec.run,
        request,
        spec.workflow_id(request, settings),
        settings,
        spec.summary(request),
        delivery,
        spec.routing(request),
    )


# -- operator requests: the saga's updates -----------------------------------------------


@dataclass(frozen=True)
class OperatorRequest:
    """An operator's request to a running saga, validated: the update and its argument."""

    kind: OperatorRequestKind
    argument: BaseModel | None = None

    @property
    def args(self) -> tuple[BaseModel, ...]:
        return () if self.argument is None else (self.argument,)


def revoke_request(reason: str | None) -> OperatorRequest:
    """Undo before the provider executed it (``InvalidRequest`` for a reason too long)."""
    return OperatorRequest(
        OperatorRequestKind.REVOKE, parse_request(RevokeRequest, {"reason": reason})
    )


def reschedule_request(wish_date: datetime, now: datetime | None = None) -> OperatorRequest:
    """A new wish date: with an offset, ahead, not too far (``InvalidRequest``)."""
    check_future_wish_date(wish_date, now or datetime.now(UTC))
    return OperatorRequest(OperatorRequestKind.RESCHEDULE, RescheduleRequest(wish_date=wish_date))


def confirm_request() -> OperatorRequest:
    """Confirm a draft (preview) order cancellation."""
    return OperatorRequest(OperatorRequestKind.CONFIRM)


def resolve_request(action: ResolveAction, note: str | None) -> OperatorRequest:
    """Answer a saga waiting in NEEDS_ATTENTION (``InvalidRequest`` for a bad note)."""
    return OperatorRequest(
        OperatorRequestKind.RESOLVE,
        parse_request(ResolveRequest, {"action": action, "note": note}),
    )


async def _steer(
    client: Client, workflow_id: str, request: OperatorRequest, *, update_id: str | None = None
) -> dict[str, Any]:
    """An operator request to a running saga (``SagaNotFound`` / ``SagaClosed`` first),
    waiting for its answer however long it takes (:func:`ask` waits a bounded time).

    ``update_id``: the request's identity; the same id sent again to the same run is
    answered with the first outcome, never applied twice (a bulk operation's retries).
    """
    await require_open(client, workflow_id)
    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id)
    result: dict[str, Any] = await handle.execute_update(
        request.kind, args=request.args, id=update_id
    )
    return result


class RequestStage(StrEnum):
    """How far an unanswered operator request got (Temporal's update life cycle)."""

    #: Sent to Temporal, which holds it for the saga; the saga has not looked at it yet
    #: (its worker is busy or away). It may still refuse it when it does.
    SENT = "sent"
    #: The saga's validator accepted it: it is in the saga's history and being applied.
    ACCEPTED = "accepted"


@dataclass(frozen=True)
class RequestPending:
    """An operator request the saga did not answer within the bound: follow its status."""

    workflow_id: str
    #: The update's id (each request gets a new one).
    request_id: str
    stage: RequestStage
    waited_seconds: float


async def ask(
    client: Client, workflow_id: str, request: OperatorRequest, *, within: float
) -> dict[str, Any] | RequestPending:
    """Send ``request`` and wait at most ``within`` seconds for the saga's answer.

    The answer (the saga's status after it applied the request) when it comes in
    time; otherwise :class:`RequestPending`, never a longer wait. The update is
    started with Temporal's "accepted" stage and its result awaited, both within the
    bound; a refusal by the saga's validator in time raises
    ``WorkflowUpdateFailedError`` as :func:`_steer` does. ``SagaNotFound`` /
    ``SagaClosed`` first, read within the bound too (a Temporal too slow to answer
    that raises its ``RPCError``: nothing was sent).

    A request still ``SENT`` when the bound passes is held by Temporal, not yet in the
    saga's history: the saga applies (or refuses) it when its worker takes the task.
    """
    loop = asyncio.get_running_loop()
    began = loop.time()

    def left() -> timedelta:
        return timedelta(seconds=max(0.001, within - (loop.time() - began)))

    await require_open(client, workflow_id, rpc_timeout=left())
    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id)
    request_id = str(uuid.uuid4())
    stage = RequestStage.SENT

    async def answer() -> dict[str, Any]:
        nonlocal stage
        update = await handle.start_update(
            request.kind,
            args=request.args,
            id=request_id,
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
            rpc_timeout=left(),
        )
        stage = RequestStage.ACCEPTED
        result: dict[str, Any] = await update.result(rpc_timeout=left())
        return result

    try:
        return await asyncio.wait_for(answer(), left().total_seconds())
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        return RequestPending(workflow_id, request_id, stage, round(loop.time() - began, 3))


async def resolve(
    client: Client,
    workflow_id: str,
    action: ResolveAction,
    note: str | None,
    *,
    update_id: str | None = None,
) -> dict[str, Any]:
    """Answer a saga waiting in NEEDS_ATTENTION."""
    return await _steer(client, workflow_id, resolve_request(action, note), update_id=update_id)


class SagaBusy(Exception):
    """The saga's worker did not answer in time (busy or away): retry later."""


async def saga_status(
    client: Client,
    workflow_id: str,
    *,
    run_id: str | None = None,
    within: float | None = None,
) -> dict[str, Any]:
    """The saga's ``status`` query as JSON-ready data (any saga type), plus run facts.

    ``run_id`` picks one run of the business key; without it, the latest. A query is
    answered by the saga's worker: ``within`` seconds bound each call, and a query
    not answered in time raises :class:`SagaBusy` (without a bound, Temporal's own
    query timeout applies).
    """
    timeout = None if within is None else timedelta(seconds=within)
    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id, run_id=run_id)
    description = await handle.describe(rpc_timeout=timeout)
    try:
        state: dict[str, Any] = await handle.query(SagaQuery.STATUS, rpc_timeout=timeout)
    except RPCError as error:
        # The SDK reports its own deadline as CANCELLED ("Timeout expired").
        timed_out = error.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)
        if within is None or not timed_out:
            raise
        raise SagaBusy(
            f"saga {workflow_id} did not answer its status within {within:g} s "
            "(its worker is busy or away); retry later"
        ) from None
    return {
        "workflowType": description.workflow_type,
        "runStatus": description.status.name if description.status else None,
        **state,
    }


async def revoke(
    client: Client, workflow_id: str, reason: str | None, *, update_id: str | None = None
) -> dict[str, Any]:
    return await _steer(client, workflow_id, revoke_request(reason), update_id=update_id)


async def confirm(client: Client, workflow_id: str) -> dict[str, Any]:
    """Confirm a draft (preview) order cancellation."""
    return await _steer(client, workflow_id, confirm_request())


async def reschedule(
    client: Client,
    workflow_id: str,
    wish_date: datetime,
    now: datetime | None = None,
    *,
    update_id: str | None = None,
) -> dict[str, Any]:
    return await _steer(
        client, workflow_id, reschedule_request(wish_date, now), update_id=update_id
    )


class SagaNotFound(LookupError):
    """No saga runs under this workflow id."""


class SagaClosed(Exception):
    """The saga's run has ended: there is nothing left to steer."""


async def require_open(
    client: Client, workflow_id: str, *, rpc_timeout: timedelta | None = None
) -> None:
    """Steering needs a running saga: ``SagaNotFound`` or ``SagaClosed`` otherwise."""
    try:
        handle = client.get_workflow_handle(workflow_id)
        description = await handle.describe(rpc_timeout=rpc_timeout)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise SagaNotFound(f"no saga {workflow_id}") from None
        raise
    if description.status != WorkflowExecutionStatus.RUNNING:
        closed = description.status.name if description.status else "CLOSED"
        raise SagaClosed(f"saga {workflow_id} is closed ({closed}); nothing to steer")


async def cancel(client: Client, workflow_id: str, *, within: float | None = None) -> None:
    """Cancel the workflow: the saga compensates what it did, then ends cancelled.

    Refused (``SagaClosed``) once the run has ended: cancelling it would do nothing.
    Temporal records the request without the saga's worker (which then compensates in
    its own time); ``within`` bounds each of the two calls to Temporal.
    """
    timeout = None if within is None else timedelta(seconds=within)
    await require_open(client, workflow_id, rpc_timeout=timeout)
    await client.get_workflow_handle(workflow_id).cancel(rpc_timeout=timeout)


#: The most sagas one listing returns (``cancelctl list --limit``, ``GET /v1/sagas?limit=``).
MAX_LIST_LIMIT = 1000


def check_list_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidRequest(
            [FieldProblem(field="limit", rule=f"must be between 1 and {MAX_LIST_LIMIT}")]
        )


#: A customer id a visibility query can hold: no quote or backslash (no injection), no
#: control character (a NUL ends the dev server's SQLite query early).
LIST_CUSTOMER_ID_PATTERN = r"^[^'\\\x00-\x1f\x7f]*$"
_LIST_CUSTOMER_ID = re.compile(LIST_CUSTOMER_ID_PATTERN)


def list_query(phase: str | None = None, customer_id: str | None = None) -> str:
    """A visibility query over our sagas (values validated, so no injection)."""
    clauses = [f"{sa.CANCELLATION_KIND.name} IS NOT NULL"]
    if phase is not None:
        try:
            SagaPhase(phase)
        except ValueError:
            allowed = ", ".join(p.value for p in SagaPhase)
            raise InvalidRequest(
                [FieldProblem(field="status", rule=f"must be one of {allowed}")]
            ) from None
        clauses.append(f"{sa.CANCELLATION_STATUS.name} = '{phase}'")
    if customer_id is not None:
        if not _LIST_CUSTOMER_ID.match(customer_id):
            raise InvalidRequest(
                [
                    FieldProblem(
                        field="customerId",
                        rule="must not contain quotes, backslashes or control characters",
                    )
                ]
            )
        clauses.append(f"{sa.CUSTOMER_ID.name} = '{customer_id}'")
    return " AND ".join(clauses)


class SagaListing(CamelModel):
    """One saga in a listing (``cancelctl list``, ``GET /v1/sagas``)."""

    workflow_id: str
    workflow_type: str
    run_status: str
    phase: str | None
    wish_date: datetime | None
    customer_id: str | None
    started: datetime


async def list_sagas(
    client: Client, phase: str | None = None, customer_id: str | None = None, limit: int = 100
) -> list[SagaListing]:
    check_list_limit(limit)
    listings = []
    async for execution in client.list_workflows(list_query(phase, customer_id), limit=limit):
        attributes = execution.typed_search_attributes
        status = execution.status or WorkflowExecutionStatus.RUNNING
        listings.append(
            SagaListing(
                workflow_id=execution.id,
                workflow_type=execution.workflow_type,
                run_status=status.name,
                phase=attributes.get(sa.CANCELLATION_STATUS),
                wish_date=attributes.get(sa.WISH_DATE),
                customer_id=attributes.get(sa.CUSTOMER_ID),
                started=execution.start_time,
            )
        )
    return listings
