"""The sagas as Temporal holds them: settled or not, each run's final status and history.

Nothing here trusts what the suite believes it started: every run in the namespace
is listed, its whole history is read (the checks scan it for ``WorkflowTaskFailed``,
the recovery times are measured on it) and its status is decoded from the history
itself (the workflow result), or asked with the ``status`` query when the run has
no result (open in ``NEEDS_ATTENTION``, or cancelled).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from domain import search_attributes as sa
from domain.common import SagaPhase, SagaQuery
from starter.kinds import KINDS

#: The sagas (not the outcome subscription store, not the webhook deliveries).
SAGAS = "WorkflowType IN ({})".format(
    ", ".join(f"'{spec.workflow.__temporal_workflow_definition.name}'" for spec in KINDS)  # type: ignore[attr-defined]
)
RUNNING = f"{SAGAS} AND ExecutionStatus = 'Running'"
NEEDS_ATTENTION = f"{RUNNING} AND {sa.CANCELLATION_STATUS.name} = '{SagaPhase.NEEDS_ATTENTION}'"
SETTLE_POLL_SECONDS = 2.0
FETCH_CONCURRENCY = 16


def event_time(event: HistoryEvent) -> datetime:
    return event.event_time.ToDatetime(tzinfo=UTC)


@dataclass(frozen=True)
class TaskFailure:
    """A ``WorkflowTaskFailed`` event: which, why, and the failure's message."""

    event_id: int
    at: datetime
    cause: str
    message: str


@dataclass
class RunRecord:
    """One workflow run, as its history and its status show it."""

    workflow_id: str
    run_id: str
    workflow_type: str
    execution_status: str
    started: datetime
    closed: datetime | None
    events: list[HistoryEvent] = field(repr=False)
    start_input: Any = None
    status: dict[str, Any] | None = None
    status_error: str | None = None

    @property
    def phase(self) -> str | None:
        return None if self.status is None else self.status.get("phase")

    @property
    def task_failures(self) -> list[TaskFailure]:
        failed = EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
        return [
            TaskFailure(
                event.event_id,
                event_time(event),
                WorkflowTaskFailedCause.Name(event.workflow_task_failed_event_attributes.cause),
                event.workflow_task_failed_event_attributes.failure.message,
            )
            for event in self.events
            if event.event_type == failed
        ]


async def count(client: Client, query: str) -> int:
    return (await client.count_workflows(query)).count


async def wait_until_settled(
    client: Client,
    deadline_seconds: float,
    report: Callable[[int, int], None],
) -> bool:
    """Until every open run waits in ``NEEDS_ATTENTION`` (``True``), or the deadline.

    ``report(open, needs_attention)`` is called after each look. Visibility is
    eventually consistent, so the answer must hold twice in a row.
    """
    deadline = time.monotonic() + deadline_seconds
    settled_once = False
    while True:
        try:
            running = await count(client, RUNNING)
            waiting = await count(client, NEEDS_ATTENTION)
        except RPCError:
            running, waiting = -1, 0  # the server is still coming back
        report(running, waiting)
        if running >= 0 and running == waiting:
            if settled_once:
                return True
            settled_once = True
        else:
            settled_once = False
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(SETTLE_POLL_SECONDS)


async def observe_all(client: Client) -> list[RunRecord]:
    """Every saga run in the namespace, with its history and status."""
    executions = [execution async for execution in client.list_workflows(SAGAS)]
    gate = asyncio.Semaphore(FETCH_CONCURRENCY)

    async def one(execution: Any) -> RunRecord:
        async with gate:
            return await _observe(client, execution)

    return list(await asyncio.gather(*(one(execution) for execution in executions)))


async def _observe(client: Client, execution: Any) -> RunRecord:
    handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
    history = await handle.fetch_history()
    events = list(history.events)
    status = execution.status or WorkflowExecutionStatus.RUNNING
    record = RunRecord(
        workflow_id=execution.id,
        run_id=execution.run_id,
        workflow_type=execution.workflow_type,
        execution_status=status.name,
        started=execution.start_time,
        closed=execution.close_time,
        events=events,
    )
    started = events[0].workflow_execution_started_event_attributes
    if started.input.payloads:
        record.start_input = (await client.data_converter.decode(started.input.payloads))[0]
    last = events[-1]
    if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        payloads = last.workflow_execution_completed_event_attributes.result.payloads
        record.status = (await client.data_converter.decode(payloads))[0]
    elif status in (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.CANCELED):
        try:
            record.status = await handle.query(SagaQuery.STATUS)
        except Exception as error:  # recorded: the checks report a run without a status
            record.status_error = f"{type(error).__name__}: {error}"
    return record
