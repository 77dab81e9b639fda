"""A worker SIGKILLed mid-call: the call is retried once its heartbeat stops, not after
its whole ``start_to_close`` timeout, and the retry finds what the lost call did.

A real worker process (``python worker.py``, as ``make run`` starts it) against the
shared dev server and a private sandbox holding the submit in flight.
"""

from __future__ import annotations

import pytest
from temporalio.api.enums.v1 import PendingActivityState, TimeoutType
from temporalio.api.failure.v1 import Failure
from temporalio.client import Client

from config.settings import OrchestratorSettings
from domain.common import SagaKind
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


async def retry_scheduled(client: Client, workflow_id: str) -> Failure:
    """The submit's second attempt, waiting for a worker: the first attempt's failure."""
    description = await client.get_workflow_handle(workflow_id).describe()
    (pending,) = [
        pending
        for pending in description.raw_description.pending_activities
        if pending.activity_type.name == StnActivity.SUBMIT_TERMINATION
    ]
    assert pending.attempt == 2, pending.attempt
    assert pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED, pending.state
    return pending.last_failure


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
        started = await sagas.start(
            client,
            SagaKind.LINE_TERMINATION,
            TerminationRequest(subscription_id=subscription),
            settings,
        )
        await eventually(lambda: submit_in_flight(client, started.workflow_id), within=60)
        first.kill()
    # No worker yet: the retry waits, scheduled, showing what ended the first attempt.
    # Its missing heartbeat (10 s), not start_to_close (60 s).
    failure = await eventually(lambda: retry_scheduled(client, started.workflow_id), within=40)
    assert failure.timeout_failure_info.timeout_type == TimeoutType.TIMEOUT_TYPE_HEARTBEAT, failure
    with worker_process(client, sandbox, settings.task_queue):
        final = await result_of(client, started.workflow_id)

    assert final["phase"] == "COMPLETED"
    # One termination at sTN: the retry looked up before it sent (the held call and
    # the retry cannot both create one).
    terminations = [
        call
        for call in sandbox_admin.calls(provider="stn", method="POST", path=TERMINATE)
        if (call["requestBody"] or {}).get("subscriptionId") == subscription
        and call["status"] == 200
    ]
    assert len(terminations) == 1
