"""A worker SIGKILLed mid-call: the call is retried once its heartbeat stops, not after
its whole ``start_to_close`` timeout, and the retry finds what the lost call did.

A real worker process (``python worker.py``, as ``make run`` starts it) against the
shared dev server and a private sandbox holding the submit in flight.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType, PendingActivityState, TimeoutType
from temporalio.client import Client

from config.settings import OrchestratorSettings
from domain.stn import StnActivity, TerminationRequest
from sandbox.testing import SandboxAdmin
from starter import sagas
from tests.conftest import TestSandbox
from tests.helpers import eventually, result_of

ROOT = Path(__file__).resolve().parent.parent
TERMINATE = "/api/TerminateSubscription"
# Longer than the heartbeat timeout, shorter than the saga's patience.
HELD_SECONDS = 20.0


class WorkerProcess:
    """``python worker.py`` on the test's task queue, pointed at the test sandbox."""

    def __init__(self, client: Client, sandbox: TestSandbox, task_queue: str, log: Path) -> None:
        self._env = {
            **os.environ,
            "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "CANCEL_TASK_QUEUE": task_queue,
            "STN_BASE_URL": sandbox.stn_url,
            "REBILLY_BASE_URL": sandbox.rebilly_url,
            "AIRALO_BASE_URL": sandbox.airalo_url,
        }
        self._log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self._log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "worker.py"], cwd=ROOT, env=self._env, stdout=log, stderr=log
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
def worker_process(
    client: Client, sandbox: TestSandbox, task_queue: str, tmp_path: Path
) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(client, sandbox, task_queue, tmp_path / "worker.log")
    worker.start()
    yield worker
    worker.stop()


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
    worker_process: WorkerProcess,
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
    started = await sagas.start_line_termination(
        client, TerminationRequest(subscription_id=subscription), settings
    )
    await eventually(lambda: submit_in_flight(client, started.workflow_id), within=60)

    worker_process.kill()
    worker_process.start()
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
