"""Worker tuning (``CANCEL_WORKER_*``): the settings become the Worker's options, and a
worker with shared workflow modules and no cache still runs a saga end to end."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from temporalio.client import Client
from temporalio.worker import PollerBehaviorSimpleMaximum
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from config.settings import OrchestratorSettings, WorkerSettings
from domain.stn import TerminationRequest
from starter import sagas
from tests.conftest import provider_settings_for
from tests.helpers import result_of
from worker import WORKFLOW_PACKAGES, build_worker, provider_clients, tuning_options


def test_shipped_defaults_share_workflow_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MAX_CACHED_WORKFLOWS", "SHARE_WORKFLOW_MODULES", "WORKFLOW_TASK_POLLERS"):
        monkeypatch.delenv(f"CANCEL_WORKER_{name}", raising=False)

    options = tuning_options(WorkerSettings())

    runner = options["workflow_runner"]
    assert isinstance(runner, SandboxedWorkflowRunner)
    assert {"workflows", "domain"} <= runner.restrictions.passthrough_modules
    assert set(WORKFLOW_PACKAGES) == {"workflows", "domain"}
    assert (
        options["max_cached_workflows"]
        == WorkerSettings.model_fields["max_cached_workflows"].get_default()
    )
    # Unset options are left to the SDK.
    assert "max_concurrent_workflow_tasks" not in options
    assert "workflow_task_poller_behavior" not in options


def test_environment_sets_each_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANCEL_WORKER_MAX_CACHED_WORKFLOWS", "250")
    monkeypatch.setenv("CANCEL_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS", "20")
    monkeypatch.setenv("CANCEL_WORKER_MAX_CONCURRENT_ACTIVITIES", "40")
    monkeypatch.setenv("CANCEL_WORKER_WORKFLOW_TASK_POLLERS", "3")
    monkeypatch.setenv("CANCEL_WORKER_ACTIVITY_TASK_POLLERS", "4")
    monkeypatch.setenv("CANCEL_WORKER_SHARE_WORKFLOW_MODULES", "false")

    options = tuning_options(WorkerSettings())

    assert options == {
        "max_cached_workflows": 250,
        "max_concurrent_workflow_tasks": 20,
        "max_concurrent_activities": 40,
        "workflow_task_poller_behavior": PollerBehaviorSimpleMaximum(3),
        "activity_task_poller_behavior": PollerBehaviorSimpleMaximum(4),
    }


def test_empty_variables_keep_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """As .env.example lists them: ``CANCEL_WORKER_WORKFLOW_TASK_POLLERS=``."""
    monkeypatch.setenv("CANCEL_WORKER_WORKFLOW_TASK_POLLERS", "")
    monkeypatch.setenv("CANCEL_WORKER_MAX_CACHED_WORKFLOWS", "")

    tuning = WorkerSettings()

    assert tuning.workflow_task_pollers is None
    assert tuning.max_cached_workflows == 1000


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_CACHED_WORKFLOWS", "-1"),
        # The SDK needs two workflow pollers (sticky and normal queue).
        ("WORKFLOW_TASK_POLLERS", "1"),
        ("MAX_CONCURRENT_ACTIVITIES", "0"),
    ],
)
def test_impossible_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(f"CANCEL_WORKER_{name}", value)
    with pytest.raises(ValidationError):
        WorkerSettings()


async def test_shared_modules_without_cache_replay_a_saga_to_completion(
    client: Client, sandbox, task_queue: str, uid: str
) -> None:
    """Cache 0: every workflow task replays the run from its history, in the shared
    modules; the saga still completes as it does with the SDK's defaults."""
    tuning = WorkerSettings(max_cached_workflows=0, share_workflow_modules=True)
    settings = OrchestratorSettings(task_queue=task_queue)
    async with (
        provider_clients(provider_settings_for(sandbox)) as clients,
        build_worker(client, task_queue, clients, tuning),
    ):
        started = await sagas.start_line_termination(
            client, TerminationRequest(subscription_id=f"SUB-TUNE-{uid}"), settings
        )
        final = await result_of(client, started.workflow_id)

    assert final["phase"] == "COMPLETED"
    assert final["activationStatus"] == "DONE"
    assert final["submissions"] == 1
    assert [step["step"] for step in final["steps"]][-1] == "completed"
