"""A bulk operation's activities: its selection page by page, and each saga's request.

:class:`BulkSteering` holds a Temporal client (injected by the worker) and steers sagas
through ``starter.sagas``, the functions behind ``cancelctl``: the same edge rules, the
same updates, each saga's own validator. Every request carries the operation's id as
its update id, so a batch retried after a worker died is answered with each saga's
first outcome instead of being applied again. A dry run asks each saga's
``would_refuse`` query instead: nothing is sent.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from temporalio import activity
from temporalio.api.workflowservice.v1 import ListWorkflowExecutionsRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from domain.bulk import (
    ApplyBatch,
    BulkAction,
    BulkActivity,
    BulkPlan,
    BulkRequest,
    ListSelection,
    OperatorCheck,
    SagaOutcome,
    SagaResult,
    SelectionPage,
)
from domain.common import InvalidRequest, OperatorRequestKind, SagaQuery
from starter import lanes, sagas

#: Answers worth another attempt of the whole batch (the updates' ids make that safe).
_TRANSIENT = frozenset(
    {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED}
)


def update_id(operation_id: str) -> str:
    """The id every request of one operation carries (unique per saga run already)."""
    return f"bulk-{operation_id}"


class BulkSteering:
    def __init__(self, client: Client, task_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue

    @activity.defn(name=BulkActivity.PLAN)
    async def plan(self, query: str) -> BulkPlan:
        counted = await self._client.count_workflows(query)
        limits = {
            lane.provider: lane.limit_per_second
            for lane in await lanes.describe_lanes(self._client, self._task_queue)
            if lane.limit_per_second is not None
        }
        return BulkPlan(selected=counted.count, lane_limits=limits)

    @activity.defn(name=BulkActivity.LIST_PAGE)
    async def list_page(self, request: ListSelection) -> SelectionPage:
        token = base64.b64decode(request.next_page_token) if request.next_page_token else b""
        listed = await self._client.workflow_service.list_workflow_executions(
            ListWorkflowExecutionsRequest(
                namespace=self._client.namespace,
                page_size=request.page_size,
                next_page_token=token,
                query=request.query,
            )
        )
        following = listed.next_page_token
        return SelectionPage(
            workflow_ids=[execution.execution.workflow_id for execution in listed.executions],
            next_page_token=base64.b64encode(following).decode() if following else None,
        )

    @activity.defn(name=BulkActivity.APPLY)
    async def apply(self, batch: ApplyBatch) -> list[SagaResult]:
        """Every saga of the batch at once; a heartbeat while their answers come."""
        steering = [asyncio.ensure_future(self._one(batch, saga)) for saga in batch.workflow_ids]
        while not all(task.done() for task in steering):
            activity.heartbeat()
            await asyncio.wait(steering, timeout=5.0)  # the heartbeat's period
        return [task.result() for task in steering]

    async def _one(self, batch: ApplyBatch, workflow_id: str) -> SagaResult:
        request = batch.request
        try:
            if request.dry_run:
                return await self._try(workflow_id, request)
            state = await self._send(workflow_id, request, update_id(batch.operation_id))
        except WorkflowUpdateFailedError as error:
            cause = error.cause
            why = str(getattr(cause, "message", None) or cause or error)
            return SagaResult(workflow_id=workflow_id, outcome=SagaOutcome.REFUSED, detail=why)
        except (sagas.SagaNotFound, sagas.SagaClosed) as closed:
            if request.action == BulkAction.CANCEL and await self._was_cancelled(workflow_id):
                # An earlier attempt of this batch cancelled it (a worker died after).
                return _applied(workflow_id, "cancelled")
            return SagaResult(
                workflow_id=workflow_id, outcome=SagaOutcome.REFUSED, detail=str(closed)
            )
        except InvalidRequest as invalid:
            why = "; ".join(f"{p.field}: {p.rule}" for p in invalid.problems)
            return SagaResult(workflow_id=workflow_id, outcome=SagaOutcome.REFUSED, detail=why)
        except RPCError as error:
            if error.status in _TRANSIENT:
                raise  # the batch is tried again; the updates' ids make that safe
            return SagaResult(
                workflow_id=workflow_id, outcome=SagaOutcome.FAILED, detail=error.message
            )
        return _applied(workflow_id, f"now {state.get('phase', 'cancelling')}")

    async def _send(self, workflow_id: str, request: BulkRequest, once: str) -> dict[str, Any]:
        client = self._client
        match request.action:
            case BulkAction.REVOKE:
                return await sagas.revoke(client, workflow_id, request.reason, update_id=once)
            case BulkAction.RESCHEDULE:
                assert request.wish_date is not None
                return await sagas.reschedule(
                    client, workflow_id, request.wish_date, update_id=once
                )
            case BulkAction.RESOLVE:
                assert request.resolve_action is not None
                return await sagas.resolve(
                    client, workflow_id, request.resolve_action, request.reason, update_id=once
                )
            case BulkAction.CANCEL:
                await sagas.cancel(client, workflow_id)
                return {}

    async def _try(self, workflow_id: str, request: BulkRequest) -> SagaResult:
        """A dry run: the saga's validator asked through its query; nothing is sent."""
        await sagas.require_open(self._client, workflow_id)
        if request.action == BulkAction.CANCEL:
            return SagaResult(workflow_id=workflow_id, outcome=SagaOutcome.WOULD_APPLY)
        check = OperatorCheck(
            kind=OperatorRequestKind(request.action.value),
            wish_date=request.wish_date,
            reason=request.reason,
            resolve_action=request.resolve_action,
        )
        handle = self._client.get_workflow_handle(workflow_id)
        refusal = await handle.query(SagaQuery.WOULD_REFUSE, check, result_type=str)
        if not refusal:
            return SagaResult(workflow_id=workflow_id, outcome=SagaOutcome.WOULD_APPLY)
        return SagaResult(workflow_id=workflow_id, outcome=SagaOutcome.WOULD_REFUSE, detail=refusal)

    async def _was_cancelled(self, workflow_id: str) -> bool:
        try:
            described = await self._client.get_workflow_handle(workflow_id).describe()
        except RPCError:
            return False
        return described.status == WorkflowExecutionStatus.CANCELED


def _applied(workflow_id: str, detail: str) -> SagaResult:
    return SagaResult(workflow_id=workflow_id, outcome=SagaOutcome.APPLIED, detail=detail)
