"""A worker SIGKILLed mid-call: the call is retried once its heartbeat stops, not after
its whole ``start_to_close`` timeout, and the retry finds what the lost call did.

A real worker process (``python worker.py``, as ``make run`` starts it) against the
shared dev server and a private sandbox holding the submit in flight.
"""

from __future__ import annotations

import pytest
from temporalio.api.enums.v1 import EventType, PendingActivityState, TimeoutType
from temporalio.client import Client

from config.settings import OrchestratorSettings
from domain.stn import StnActivity, TerminationRequest
from sandbox.testing import SandboxAdmin
from starter import sagas
from tests.conftest import TestSandbox
from tests.helpers import eventually, result_of
from tests.worker_process import worker_process

TERMINATE = "/api/TerminateSubscription"
# Longer than the heartbeat timeout, shorter than the saga's patience.
HELD_SECONDS = 20.0


async def submit_in_flight(client: Client, workflow_id: str) -> None:
    description = await client.get_workflow_handle(workflow_id).describe()
    states = [
        pending.state
        for pending in description.raw_description.pending_activities
        if pending.activity_type.name == StnActivity.SUBMIT_TERMINATION
    ]
    assert states == [PendingActivityState.PENDING_ACTIVITY_STATE_STARTED], states


@pytest.mark.own_sandbox
async def test_call_in_flight_when_worker_dies_is_retried_after_its_heartbeat_stops(
    client: Client,
    sandbox: TestSandbox,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    subscription = f"SUB-{uid}"
    sandbox_admin.add_fault(
        provider="stn",
        method="POST",
        path=TERMINATE,
        mode="latency",
        latency_seconds=HELD_SECONDS,
        count=1,
    )
    with worker_process(client, sandbox, settings.task_queue) as first:
        started = await sagas.start_line_termination(
            client, TerminationRequest(subscription_id=subscription), settings
        )
        await eventually(lambda: submit_in_flight(client, started.workflow_id), within=60)
        first.kill()
    with worker_process(client, sandbox, settings.task_queue):
        final = await result_of(client, started.workflow_id)

    assert final["phase"] == "COMPLETED"
    # The held call reached sTN; the retry found its activation instead of sending again.
    terminations = [
        call
        for call in sandbox_admin.calls(provider="stn", method="POST", path=TERMINATE)
        if (call["requestBody"] or {}).get("subscriptionId") == subscription
    ]
    assert len(terminations) == 1
    history = await client.get_workflow_handle(started.workflow_id).fetch_history()
    scheduled = {
        event.event_id
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and event.activity_task_scheduled_event_attributes.activity_type.name
        == StnActivity.SUBMIT_TERMINATION
    }
    (retried,) = [
        event.activity_task_started_event_attributes
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and event.activity_task_started_event_attributes.scheduled_event_id in scheduled
    ]
    assert retried.attempt == 2
    # What ended the first attempt: its missing heartbeat, not start_to_close (30-60 s).
    assert (
        retried.last_failure.timeout_failure_info.timeout_type == TimeoutType.TIMEOUT_TYPE_HEARTBEAT
    ), retried.last_failure
