"""Worker tuning (``CANCEL_WORKER_*``): the settings become the Worker's options, and a
worker with shared workflow modules and no cache still runs a saga end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.client import Client
from temporalio.worker import PatchActivationInput, PollerBehaviorSimpleMaximum
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from config.settings import OrchestratorSettings, WorkerSettings
from domain.common import Provider, SagaKind
from domain.lanes import lane_queue
from domain.stn import TerminationRequest
from stacks.service import ROOT
from starter import sagas
from tests.conftest import SandboxEndpoint, provider_settings_for
from tests.helpers import result_of
from worker import (
    WORKFLOW_PACKAGES,
    UnknownPatchIds,
    build_worker,
    provider_clients,
    tuning_options,
)
from workflows import patches


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
    monkeypatch.setenv("CANCEL_WORKER_MAX_TASK_QUEUE_ACTIVITIES_PER_SECOND", "2.5")

    options = tuning_options(WorkerSettings())

    assert options == {
        "max_task_queue_activities_per_second": 2.5,
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
        ("MAX_TASK_QUEUE_ACTIVITIES_PER_SECOND", "0"),
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
        started = await sagas.start(
            client,
            SagaKind.LINE_TERMINATION,
            TerminationRequest(subscription_id=f"SUB-TUNE-{uid}"),
            settings,
        )
        final = await result_of(client, started.workflow_id)

    assert final["phase"] == "COMPLETED"
    assert final["activationStatus"] == "DONE"
    assert final["submissions"] == 1
    assert [step["step"] for step in final["steps"]][-1] == "completed"


def test_held_patches_are_read_from_a_comma_separated_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    held = patches.CHURN_COMPLETED_BILLING_NOT_UNDONE
    monkeypatch.setenv("CANCEL_WORKER_HOLD_PATCHES", f" {patches.GENERATION}, {held} ")

    callback = tuning_options(WorkerSettings())["patch_activation_callback"]

    assert WorkerSettings().hold_patches == {patches.GENERATION, held}
    asked = [patches.GENERATION, held, patches.ONE_UPSERT_PER_TASK]
    assert [callback(_asked(patch_id)) for patch_id in asked] == [False, False, True]


def test_holding_a_patch_holds_every_marker_that_implies_it() -> None:
    """A newer generation's marker implies the older patches: held alone, a new run would
    record the newest marker and take the held patch's new path all the same."""
    callback = tuning_options(WorkerSettings(hold_patches=patches.PROVIDER_LANES))[
        "patch_activation_callback"
    ]

    newer = [marker for marker, _ in patches.GENERATIONS][
        : [marker for marker, _ in patches.GENERATIONS].index(patches.PROVIDER_LANES)
    ]
    assert newer and patches.GENERATION in newer
    assert [callback(_asked(marker)) for marker in [*newer, patches.PROVIDER_LANES]] == [False] * (
        len(newer) + 1
    )
    assert callback(_asked(patches.ONE_UPSERT_PER_TASK))
    assert callback(_asked(patches.CHURN_COMPLETED_BILLING_NOT_UNDONE))


def test_a_retired_patch_can_no_longer_be_held() -> None:
    """Its old path is gone (workflows/patches.py RETIRED): holding it would change nothing."""
    with pytest.raises(UnknownPatchIds) as refused:
        tuning_options(WorkerSettings(hold_patches=patches.SHIELDED_SUBMIT))

    assert f"unknown patch id(s) {patches.SHIELDED_SUBMIT}" in str(refused.value)
    assert patches.SHIELDED_SUBMIT in patches.RETIRED


def test_an_unknown_patch_id_is_refused_with_the_known_ones() -> None:
    with pytest.raises(UnknownPatchIds) as refused:
        tuning_options(WorkerSettings(hold_patches="ledger-one-upsert-per-tusk"))

    message = str(refused.value)
    assert "CANCEL_WORKER_HOLD_PATCHES" in message
    assert "unknown patch id(s) ledger-one-upsert-per-tusk" in message
    assert patches.GENERATION in message and patches.ONE_UPSERT_PER_TASK in message


def test_a_worker_with_an_unknown_held_patch_stops_at_start_up_saying_why() -> None:
    """Before it connects (no server here): the setting, the unknown id, the known ones."""
    env = {**os.environ, "CANCEL_WORKER_HOLD_PATCHES": "ledger-one-upsert-per-tusk"}
    env["TEMPORAL_ADDRESS"] = "127.0.0.1:9"  # nothing listens: a connection would fail

    stopped = subprocess.run(
        [sys.executable, "worker.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert stopped.returncode == 1
    assert stopped.stderr.startswith("error: CANCEL_WORKER_HOLD_PATCHES: unknown patch id(s) ")
    assert "ledger-one-upsert-per-tusk" in stopped.stderr and patches.GENERATION in stopped.stderr
    assert "Traceback" not in stopped.stderr


def test_without_held_patches_every_patch_activates() -> None:
    assert "patch_activation_callback" not in tuning_options(WorkerSettings(hold_patches=""))


def _asked(patch_id: str) -> PatchActivationInput:
    # The worker's callback reads only the patch id.
    return PatchActivationInput(workflow_info=None, patch_id=patch_id)  # type: ignore[arg-type]


async def _history_of_an_immediate_termination(
    client: Client,
    sandbox: SandboxEndpoint,
    task_queue: str,
    subscription_id: str,
    tuning: WorkerSettings,
) -> tuple[list[str], list[dict[str, Any]], set[str]]:
    """The patch ids recorded, the search attributes upserted (in order) and the task
    queues the provider calls were scheduled on."""
    settings = OrchestratorSettings(task_queue=task_queue)
    async with (
        provider_clients(provider_settings_for(sandbox)) as clients,
        build_worker(client, task_queue, clients, tuning),
    ):
        started = await sagas.start(
            client,
            SagaKind.LINE_TERMINATION,
            TerminationRequest(subscription_id=subscription_id),
            settings,
        )
        final = await result_of(client, started.workflow_id)
    assert final["phase"] == "COMPLETED"
    history = await client.get_workflow_handle(started.workflow_id).fetch_history()
    markers, upserts, queues = [], [], set()
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            queues.add(event.activity_task_scheduled_event_attributes.task_queue.name)
        details = event.marker_recorded_event_attributes.details
        if event.HasField("marker_recorded_event_attributes") and "patch-data" in details:
            patch = details["patch-data"].payloads[0]
            markers.append(json.loads(patch.data)["id"])
        if event.HasField("upsert_workflow_search_attributes_event_attributes"):
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            upserts.append(
                {name: json.loads(value.data) for name, value in fields.indexed_fields.items()}
            )
    return markers, upserts, queues


async def test_a_new_run_records_one_patch_marker_and_upserts_once_per_task(
    client: Client, sandbox, task_queue: str, uid: str
) -> None:
    """Immediate termination, three workflow tasks: RECEIVED merges into SUBMITTING,
    WAITING into POLLING; every earlier patch is implied by the generation, and sTN
    is called on its lane."""
    markers, upserts, queues = await _history_of_an_immediate_termination(
        client, sandbox, task_queue, f"SUB-GEN-{uid}", WorkerSettings()
    )

    assert markers == [patches.GENERATION]
    statuses = [u["CancellationStatus"] for u in upserts if "CancellationStatus" in u]
    assert statuses == ["SUBMITTING", "POLLING", "COMPLETED"]
    assert {"CancellationKind", "CancellationProviders", "WishDate"} <= set(upserts[1])
    # The marker's own upsert, added by sdk-core: the fourth.
    assert upserts[0] == {"TemporalChangeVersion": [patches.GENERATION]}
    assert len(upserts) == 4
    assert queues == {lane_queue(task_queue, Provider.STN)}


async def test_a_held_generation_makes_new_runs_take_the_generation_before_it(
    client: Client, sandbox, task_queue: str, uid: str
) -> None:
    """A rolling upgrade: with lanes (and the generations after them) held, new runs
    record the generation before (one marker, one upsert per task) and call sTN on the
    sagas' own queue, as the release before did (its workers can replay them and serve
    their calls)."""
    held = WorkerSettings(
        hold_patches=f"{patches.AIRALO_LIST_PAGE_BY_PAGE},{patches.OUTCOME_EVENTS},"
        f"{patches.PROVIDER_LANES}"
    )

    markers, upserts, queues = await _history_of_an_immediate_termination(
        client, sandbox, task_queue, f"SUB-HELD-{uid}", held
    )

    assert markers == [patches.ONE_UPSERT_PER_TASK]
    statuses = [u["CancellationStatus"] for u in upserts if "CancellationStatus" in u]
    assert statuses == ["SUBMITTING", "POLLING", "COMPLETED"]
    assert queues == {task_queue}


async def test_every_held_generation_makes_new_runs_ask_each_patch(
    client: Client, sandbox, task_queue: str, uid: str
) -> None:
    """Every generation held: new runs ask each patch and upsert at every phase change,
    as the release before the generations did."""
    held = WorkerSettings(
        hold_patches=f"{patches.AIRALO_LIST_PAGE_BY_PAGE},{patches.OUTCOME_EVENTS},"
        f"{patches.PROVIDER_LANES},{patches.ONE_UPSERT_PER_TASK}"
    )

    markers, upserts, queues = await _history_of_an_immediate_termination(
        client, sandbox, task_queue, f"SUB-HELD-ALL-{uid}", held
    )

    assert markers == [patches.SHIELDED_SUBMIT]
    statuses = [u["CancellationStatus"] for u in upserts if "CancellationStatus" in u]
    assert statuses == ["RECEIVED", "SUBMITTING", "WAITING", "POLLING", "COMPLETED"]
    assert queues == {task_queue}
