"""BulkOperation: one operator request to every saga of a selection, durably.

The selection (a visibility query over running sagas, ``domain/bulk.py``) is read page
by page; each page is sent in batches to an activity that steers every saga of the
batch through the same functions as ``cancelctl`` (``starter.sagas``), so each saga's
validator accepts or refuses it, saga by saga. Each request carries the operation's
id as its update id: a batch retried after a worker died is answered with the first
outcome by Temporal, never applied twice. Batches are paced so that the calls the
sagas make stay within their lanes' limits (``domain.bulk.bulk_pace``): a month-end
operation never starts a stampede. A cancellation stops it between batches: what was
applied stays applied, and the report says so. A long operation continues as new
after each page once its history grows; its progress travels with it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.bulk import (
        MEMO_OPERATION_ID,
        ApplyBatch,
        BulkCalls,
        BulkJob,
        BulkProgress,
        ListSelection,
        SagaOutcome,
        SagaResult,
        bulk_pace,
    )

from workflows.ledger import describe_failure

#: Sagas read from visibility at a time.
PAGE_SIZE = 500
#: Sagas one activity steers at once.
BATCH_SIZE = 25
#: Past this many history events, the operation continues as new after its page.
HISTORY_LIMIT = 5_000
#: A batch waits for its sagas' answers (a reschedule calls its provider), beating often.
BATCH_TIMEOUT = timedelta(minutes=30)
HEARTBEAT = timedelta(seconds=30)
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=10,
)


# Worker Versioning: AUTO_UPGRADE, declared in workflows/versioning.py (why there).
@workflow.defn(name="BulkOperation")
class BulkOperationWorkflow:
    @workflow.init
    def __init__(self, job: BulkJob) -> None:
        self._progress = job.progress or BulkProgress(
            operation_id=job.operation_id,
            action=job.request.action,
            query=job.query,
            dry_run=job.request.dry_run,
            state="starting",
            selected=0,
            started_at=workflow.now(),
        )

    @workflow.run
    async def run(self, job: BulkJob) -> BulkProgress:
        progress = self._progress
        if progress.state == "starting":
            await self._plan(job)
        token = job.next_page_token
        try:
            while progress.state == "running":
                page = await workflow.execute_activity_method(
                    BulkCalls.list_page,
                    ListSelection(query=job.query, page_size=PAGE_SIZE, next_page_token=token),
                    start_to_close_timeout=timedelta(minutes=1),
                    retry_policy=RETRY,
                    summary="read a page of the selection",
                )
                for first in range(0, len(page.workflow_ids), BATCH_SIZE):
                    batch = page.workflow_ids[first : first + BATCH_SIZE]
                    began = workflow.now()
                    # Shielded: a cancellation lets the batch in flight finish, so the
                    # report says exactly what was applied; then the operation stops.
                    steering = asyncio.ensure_future(self._steer(job, batch))
                    try:
                        await asyncio.shield(steering)
                    except asyncio.CancelledError:
                        await steering
                        raise
                    await self._pace(began, len(batch))
                token = page.next_page_token
                if token is None:
                    progress.state = "done"
                elif workflow.info().get_current_history_length() > HISTORY_LIMIT:
                    workflow.continue_as_new(
                        job.model_copy(update={"progress": progress, "next_page_token": token}),
                        memo={MEMO_OPERATION_ID: job.operation_id},
                    )
        except asyncio.CancelledError:
            progress.state = "cancelled"
        progress.finished_at = workflow.now()
        return progress

    async def _plan(self, job: BulkJob) -> None:
        plan = await workflow.execute_activity_method(
            BulkCalls.plan,
            job.query,
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=RETRY,
            summary="count the selection, read the lanes' limits",
        )
        self._progress.selected = plan.selected
        self._progress.pace_per_second = bulk_pace(job.request.action, plan.lane_limits)
        self._progress.state = "running"

    async def _steer(self, job: BulkJob, batch: list[str]) -> None:
        """One batch: the request to each saga (or tried on it, dry), recorded."""
        progress = self._progress
        try:
            results = await workflow.execute_activity_method(
                BulkCalls.apply,
                ApplyBatch(operation_id=job.operation_id, request=job.request, workflow_ids=batch),
                start_to_close_timeout=BATCH_TIMEOUT,
                heartbeat_timeout=HEARTBEAT,
                retry_policy=RETRY,
                summary=f"{job.request.action} {len(batch)} sagas",
            )
        except ActivityError as error:  # after its retries: the batch failed, said per saga
            why = describe_failure(error)
            results = [
                SagaResult(workflow_id=saga, outcome=SagaOutcome.FAILED, detail=why)
                for saga in batch
            ]
        for result in results:
            progress.record(result)

    async def _pace(self, began: datetime, sagas: int) -> None:
        """Wait what the operation's pace asks before its next batch (none: no wait)."""
        pace = self._progress.pace_per_second
        if pace:
            left = timedelta(seconds=sagas / pace) - (workflow.now() - began)
            if left > timedelta(0):
                await workflow.sleep(left)

    @workflow.query(name="progress", description="Where the operation is, and its report so far")
    def progress(self) -> BulkProgress:
        return self._progress
