"""Bulk operations as ``cancelctl bulk`` and ``/v1/bulk-operations`` start and follow them.

One bulk operation at a time per task queue: its workflow id is fixed
(:func:`bulk_workflow_id`), so Temporal refuses a second while one runs
(:class:`BulkOperationRunning`): two operations can never steer the same sagas at
once, nor double a request. Each operation has an id of its own (in its memo), by
which it is found again after it continued as new or ended.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from config.settings import OrchestratorSettings
from domain.bulk import MEMO_OPERATION_ID, BulkJob, BulkProgress, BulkRequest
from workflows.bulk_operation import BulkOperationWorkflow


def bulk_workflow_id(task_queue: str) -> str:
    return f"bulk-operation-{task_queue}"


class SelectionRejected(Exception):
    """Temporal refused the selection's query; the message is its reason."""


class BulkOperationRunning(Exception):
    """Another bulk operation is running on this task queue."""

    def __init__(self, operation_id: str | None) -> None:
        self.operation_id = operation_id
        super().__init__(
            f"bulk operation {operation_id or '(unknown)'} is running: wait for it, or stop it "
            "(cancelctl bulk stop ID); two operations never steer sagas at once"
        )


class BulkOperationNotFound(LookupError):
    pass


@dataclass(frozen=True)
class StartedBulk:
    operation_id: str
    query: str
    selected: int


async def count_selection(client: Client, query: str) -> int:
    """How many running sagas the query selects (``SelectionRejected`` with Temporal's
    reason for a query it cannot run)."""
    try:
        return (await client.count_workflows(query)).count
    except RPCError as error:
        if error.status == RPCStatusCode.INVALID_ARGUMENT:
            raise SelectionRejected(error.message) from None
        raise


async def start_bulk(
    client: Client, request: BulkRequest, settings: OrchestratorSettings
) -> StartedBulk:
    """Start the operation (``BulkOperationRunning`` if one runs); the caller counted
    the selection first and starts nothing for an empty one."""
    query = request.selection.visibility_query(settings.task_queue)
    operation_id = uuid.uuid4().hex[:16]
    try:
        await client.start_workflow(
            BulkOperationWorkflow.run,
            BulkJob(operation_id=operation_id, request=request, query=query),
            id=bulk_workflow_id(settings.task_queue),
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            memo={MEMO_OPERATION_ID: operation_id},
            static_summary=f"bulk {request.action}{' (dry run)' if request.dry_run else ''}: "
            f"{query}",
        )
    except WorkflowAlreadyStartedError:
        raise BulkOperationRunning(await running_operation(client, settings)) from None
    return StartedBulk(operation_id, query, 0)


async def running_operation(client: Client, settings: OrchestratorSettings) -> str | None:
    """The id of the operation running now, if one is."""
    try:
        described = await client.get_workflow_handle(
            bulk_workflow_id(settings.task_queue)
        ).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    if described.status != WorkflowExecutionStatus.RUNNING:
        return None
    operation: str | None = (await described.memo()).get(MEMO_OPERATION_ID)
    return operation


async def operation_handle(
    client: Client, settings: OrchestratorSettings, operation_id: str
) -> WorkflowHandle[BulkOperationWorkflow, BulkProgress]:
    """The latest run of the operation (it may have continued as new, or ended).

    The latest run of the workflow id first (strongly consistent: an operation started a
    moment ago), then every earlier run from visibility.
    """
    workflow_id = bulk_workflow_id(settings.task_queue)
    try:
        latest = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
    else:
        if (await latest.memo()).get(MEMO_OPERATION_ID) == operation_id:
            return client.get_workflow_handle_for(
                BulkOperationWorkflow.run, workflow_id, run_id=latest.run_id
            )
    runs = client.list_workflows(f"WorkflowId = '{workflow_id}'")
    async for run in runs:  # newest first
        if (await run.memo()).get(MEMO_OPERATION_ID) == operation_id:
            return client.get_workflow_handle_for(
                BulkOperationWorkflow.run, workflow_id, run_id=run.run_id
            )
    raise BulkOperationNotFound(f"no bulk operation {operation_id}")


async def progress_of(
    client: Client, settings: OrchestratorSettings, operation_id: str
) -> BulkProgress:
    """Where the operation is (running), or its final report (ended)."""
    handle = await operation_handle(client, settings, operation_id)
    described = await handle.describe()
    if described.status == WorkflowExecutionStatus.RUNNING:
        return await handle.query(BulkOperationWorkflow.progress)
    return await handle.result()


async def stop(client: Client, settings: OrchestratorSettings, operation_id: str) -> None:
    """Cancel the operation: the batch in flight finishes, nothing after it is sent."""
    if await running_operation(client, settings) != operation_id:
        raise BulkOperationNotFound(f"bulk operation {operation_id} is not running")
    await client.get_workflow_handle(bulk_workflow_id(settings.task_queue)).cancel()
