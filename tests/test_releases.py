"""The release procedure end to end (README "Releases"), with real worker processes on the
real dev server: v1's workers with a saga waiting on its timer; v2 started beside them,
ramped, promoted; v1's waiting saga finishing on v2; v1 drained; a rollback sending new
runs back to v1 and v2's waiting saga finishing on v1; not one failed workflow task.

v1 is the release before outcome events: its workers hold the ``outcome-events`` patch
(``CANCEL_WORKER_HOLD_PATCHES``, with every newer marker), so the runs it starts record the
``provider-lanes`` generation and emit no outcome event, while v2's record the newest: a real
difference in the commands a run issues, seen in each run's markers.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import metadata

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType, VersioningBehavior
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.worker import WorkerDeploymentConfig

from config import deployment as deployment_settings
from config.settings import OrchestratorSettings
from domain.common import SagaKind
from domain.stn import TerminationRequest
from stacks.service import Service
from starter import cli, releases, sagas
from tests.conftest import TestSandbox
from tests.fast.nimbus.sagas import PlanCancellationSaga
from tests.helpers import eventually, result_of, wait_for_phase
from tests.worker_process import worker_process
from worker import OUTCOME_WORKFLOWS, WORKFLOWS, UndeclaredVersioning, versioned
from workflows import patches, versioning

#: Runs started while v2 ramps at half: each goes to v1 or v2 by its workflow id's hash;
#: all 16 on one side has a chance of 2 in 65,536.
RAMPED_RUNS = 16


@pytest.fixture
def deployment(uid: str) -> str:
    return f"co-release-{uid}"


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch, client: Client, task_queue: str, deployment: str
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", client.namespace)
    monkeypatch.setenv("CANCEL_TASK_QUEUE", task_queue)
    monkeypatch.setenv("CANCEL_DEPLOYMENT_NAME", deployment)


async def cancelctl(*argv: str) -> int:
    return await asyncio.to_thread(cli.main, list(argv))


def version_env(deployment: str, build_id: str, **env: str) -> dict[str, str]:
    """A release's workers: they make their version current only on the first release."""
    return {
        "CANCEL_DEPLOYMENT_NAME": deployment,
        "CANCEL_DEPLOYMENT_BUILD_ID": build_id,
        "CANCEL_DEPLOYMENT_ON_START": "first",
        **env,
    }


@pytest.fixture
def release_workers(
    client: Client, sandbox: TestSandbox, task_queue: str, deployment: str
) -> Iterator[dict[str, Service]]:
    """v1 (holding outcome events) running; v2 started by the test, beside it."""
    with worker_process(
        client,
        sandbox,
        task_queue,
        **version_env(deployment, "v1", CANCEL_WORKER_HOLD_PATCHES=patches.OUTCOME_EVENTS),
    ) as v1:
        yield {"v1": v1}


async def start_line(
    client: Client, settings: OrchestratorSettings, uid: str, wish_date: datetime | None
) -> str:
    started = await sagas.start(
        client,
        SagaKind.LINE_TERMINATION,
        TerminationRequest(subscription_id=f"SUB-{uid}", wish_date=wish_date),
        settings,
    )
    return started.workflow_id


async def markers(client: Client, workflow_id: str) -> list[str]:
    """The patch markers the run recorded, in order."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    found = []
    for event in history.events:
        if event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED:
            continue
        attributes = event.marker_recorded_event_attributes
        if attributes.marker_name == "core_patch":
            data = attributes.details["patch-data"].payloads[0].data
            found.append(json.loads(data)["id"])
    return found


async def started_on(client: Client, workflow_id: str) -> str:
    """The build id of the worker that completed the run's first workflow task."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            return event.workflow_task_completed_event_attributes.deployment_version.build_id
    raise AssertionError(f"{workflow_id} completed no workflow task")


async def running_on(client: Client, workflow_id: str) -> str:
    """The build id the run is on now, and it runs AUTO_UPGRADE (workflows/versioning.py)."""
    described = await client.get_workflow_handle(workflow_id).describe()
    info = described.raw_description.workflow_execution_info.versioning_info
    assert info.behavior == VersioningBehavior.VERSIONING_BEHAVIOR_AUTO_UPGRADE, info
    return info.deployment_version.build_id


async def failed_tasks(client: Client, workflow_id: str) -> list[str]:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return [
        str(event.workflow_task_failed_event_attributes.failure.message)
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    ]


async def deployment_view(client: Client, deployment: str) -> releases.DeploymentView:
    """The deployment as the server describes it. Once under a loaded machine (xdist, a
    benchmark beside it) the server answered NOT_FOUND for a deployment whose version
    had been current for seconds; its description is the state of a system workflow
    and is read again rather than taken as gone."""

    async def described() -> releases.DeploymentView:
        view = await releases.describe(client, deployment)
        assert view is not None, f"{deployment}: NOT_FOUND"
        return view

    return await eventually(described, within=30, interval=1.0)


def far() -> datetime:
    return (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)


async def wake(client: Client, workflow_id: str) -> None:
    """Move the saga's wish date to now: its next task runs on the version it routes to."""
    await sagas.reschedule(
        client, workflow_id, (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    )


# Wall clock ~60 s: three worker processes start, 20 sagas run.
async def test_release_ramp_promote_drain_rollback(
    cli_env: None,
    client: Client,
    sandbox: TestSandbox,
    settings: OrchestratorSettings,
    task_queue: str,
    deployment: str,
    release_workers: dict[str, Service],
    capsys: pytest.CaptureFixture[str],
    uid: str,
) -> None:
    # v1, the first release, made itself current; a saga waits on its timer on v1.
    waiting_v1 = await start_line(client, settings, f"{uid}-a", far())
    await wait_for_phase(client, waiting_v1, "WAITING")
    assert await started_on(client, waiting_v1) == "v1"
    assert await markers(client, waiting_v1) == [patches.PROVIDER_LANES]

    with worker_process(client, sandbox, task_queue, **version_env(deployment, "v2")):
        # v2 polls beside v1 and gets nothing yet.
        view = await deployment_view(client, deployment)
        assert view.current_build_id == "v1" and view.version("v2") is not None
        assert await cancelctl("release", "status") == 0
        shown = capsys.readouterr().out
        assert f"deployment {deployment}: current v1" in shown and "v2" in shown

        # Ramp: half of the new runs go to v2, and they are v2's behaviour.
        assert await cancelctl("release", "ramp", "v2", "--percent", "50") == 0
        assert "ramping v2 (50% of new runs)" in capsys.readouterr().out
        ramped = [
            await start_line(client, settings, f"{uid}-r{index}", None)
            for index in range(RAMPED_RUNS)
        ]
        finals = [await result_of(client, workflow_id) for workflow_id in ramped]
        assert {final["phase"] for final in finals} == {"COMPLETED"}
        versions = {workflow_id: await started_on(client, workflow_id) for workflow_id in ramped}
        assert set(versions.values()) == {"v1", "v2"}, versions
        for workflow_id, build_id in versions.items():
            generation = patches.GENERATION if build_id == "v2" else patches.PROVIDER_LANES
            assert (await markers(client, workflow_id))[0] == generation, workflow_id

        # Promote: every new run goes to v2; v1's waiting saga finishes on v2, on its
        # old path (no outcome events), and v1 drains: no run is pinned to it.
        assert await cancelctl("release", "promote", "v2") == 0
        assert "current v2" in capsys.readouterr().out
        waiting_v2 = await start_line(client, settings, f"{uid}-b", far())
        await wait_for_phase(client, waiting_v2, "WAITING")
        assert await started_on(client, waiting_v2) == "v2"
        assert await markers(client, waiting_v2) == [patches.GENERATION]
        await wake(client, waiting_v1)
        assert (await result_of(client, waiting_v1))["phase"] == "COMPLETED"
        assert await running_on(client, waiting_v1) == "v2"
        assert await markers(client, waiting_v1) == [patches.PROVIDER_LANES]

        async def drained() -> None:
            v1 = (await deployment_view(client, deployment)).version("v1")
            assert v1 is not None and v1.drainage == "drained", v1

        await eventually(drained, within=60, interval=1.0)
        assert await cancelctl("release", "status", "--json") == 0
        status = json.loads(capsys.readouterr().out)
        assert status["currentBuildId"] == "v2"
        assert {v["buildId"]: v["drainage"] for v in status["versions"]}["v1"] == "drained"

        # Roll back: new runs go to v1 again, and v2's waiting saga finishes on v1
        # (v1 knows the outcome-events path: it only held it for new runs).
        assert await cancelctl("release", "rollback") == 0
        assert "v1 is current again (was v2)" in capsys.readouterr().out
        after_rollback = await start_line(client, settings, f"{uid}-c", None)
        assert (await result_of(client, after_rollback))["phase"] == "COMPLETED"
        assert await started_on(client, after_rollback) == "v1"
        assert await markers(client, after_rollback) == [patches.PROVIDER_LANES]
        await wake(client, waiting_v2)
        assert (await result_of(client, waiting_v2))["phase"] == "COMPLETED"
        assert await running_on(client, waiting_v2) == "v1"

    every = [waiting_v1, waiting_v2, after_rollback, *ramped]
    failures = {workflow_id: await failed_tasks(client, workflow_id) for workflow_id in every}
    assert failures == {workflow_id: [] for workflow_id in every}, failures


async def test_release_refuses_bad_input_naming_the_field(
    cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await cancelctl("release", "ramp", "v2", "--percent", "100") == 2
    assert "invalid percent: must be a share of new runs above 0 and below 100" in (
        capsys.readouterr().err
    )
    assert await cancelctl("release", "promote", "no spaces") == 2
    assert "invalid BUILD_ID: 1 to 100 letters" in capsys.readouterr().err
    assert await cancelctl("release", "--deployment", "a.b", "status") == 2
    assert "invalid deployment: " in capsys.readouterr().err


async def test_release_unknown_version_and_unreachable_server(
    cli_env: None,
    monkeypatch: pytest.MonkeyPatch,
    release_workers: dict[str, Service],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert await cancelctl("release", "promote", "v9") == 1
    assert "refused: deployment" in capsys.readouterr().err
    assert await cancelctl("release", "rollback") == 1
    assert "has no version that was current before" in capsys.readouterr().err

    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
    assert await cancelctl("release", "status") == 1
    assert "cannot reach Temporal at 127.0.0.1:1" in capsys.readouterr().err


def test_every_workflow_type_is_declared_and_none_in_its_decorator() -> None:
    """A versioned worker runs each type AUTO_UPGRADE; a decorator's declaration would
    make the server refuse every task of an unversioned worker (workflows/versioning.py)."""
    runs = [*WORKFLOWS, *OUTCOME_WORKFLOWS]
    config = versioned(WorkerDeploymentVersion("co", "v1"), runs)

    assert isinstance(config, WorkerDeploymentConfig) and config.use_worker_versioning
    assert config.default_versioning_behavior == versioning.DEFAULT
    definitions = [workflow._Definition.must_from_class(run) for run in runs]
    assert {definition.name for definition in definitions} == set(versioning.BEHAVIOURS)
    assert [d.name for d in definitions if d.versioning_behavior] == []  # UNSPECIFIED is 0
    assert all(entry.reason for entry in versioning.BEHAVIOURS.values())


def test_a_versioned_worker_refuses_an_undeclared_workflow_type() -> None:
    with pytest.raises(UndeclaredVersioning) as refused:
        versioned(WorkerDeploymentVersion("co", "v1"), [*WORKFLOWS, PlanCancellationSaga])

    assert "NimbusPlanCancellation not declared AUTO_UPGRADE in workflows/versioning.py" in str(
        refused.value
    )


async def test_release_patches_names_the_old_paths_runs_still_need_and_gates_a_release(
    cli_env: None,
    client: Client,
    settings: OrchestratorSettings,
    release_workers: dict[str, Service],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    uid: str,
) -> None:
    """v1 holds outcome events: its waiting saga could still take that patch's old path;
    the retired patches' old paths no run can take (its generation marker implies them)."""
    waiting = await start_line(client, settings, uid, far())
    await wait_for_phase(client, waiting, "WAITING")

    async def counted() -> dict[str, dict[str, object]]:
        assert await cancelctl("release", "patches", "--json") == 0
        uses = {use["patch"]: use for use in json.loads(capsys.readouterr().out)}
        assert uses[patches.OUTCOME_EVENTS]["openRuns"] == 1, uses
        return uses

    uses = await eventually(counted, within=30, interval=1.0)
    assert list(uses) == list(patches.IN_ORDER)
    assert {patch for patch, use in uses.items() if use["retired"]} == patches.RETIRED
    # outcome-events and every newer marker: the ones v1 held.
    held = patches.holding(frozenset({patches.OUTCOME_EVENTS}))
    assert patches.GENERATION in held and patches.PROVIDER_LANES not in held
    assert {patch for patch, use in uses.items() if use["openRuns"]} == held, uses
    assert await cancelctl("release", "patches") == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"{patches.SHIELDED_SUBMIT:<38} retired: no run can take its old path" in lines
    assert f"{patches.OUTCOME_EVENTS:<38} in use: 1 open run(s) can still take its old path" in (
        lines
    )

    # A release that retired outcome events would break that saga: ramp and promote refuse.
    monkeypatch.setattr(patches, "RETIRED", patches.RETIRED | {patches.OUTCOME_EVENTS})
    assert await cancelctl("release", "promote", "v1") == 1
    assert (
        f"refused: {patches.OUTCOME_EVENTS}: retired in this release, but 1 open run(s) can "
        "still take its old path: do not ramp or promote this release yet"
    ) in capsys.readouterr().err
    assert await cancelctl("release", "ramp", "v1", "--percent", "10") == 1
    assert "do not ramp or promote this release yet" in capsys.readouterr().err


def test_a_production_worker_outside_a_checkout_needs_a_build_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An image has no git commit: two builds of one package version would share a build
    id, so production refuses to guess; a checkout, or development, uses version+commit."""
    monkeypatch.setattr(deployment_settings, "checkout_commit", lambda: None)
    settings = deployment_settings.DeploymentSettings
    with pytest.raises(deployment_settings.MissingBuildId, match="BUILD_ID: required"):
        settings().version(production=True)

    assert settings(build_id="0.2.0-abc").version(production=True) == (
        WorkerDeploymentVersion(deployment_settings.DEFAULT_DEPLOYMENT_NAME, "0.2.0-abc")
    )
    unversioned = deployment_settings.DeploymentSettings(versioning=False)
    assert unversioned.version(production=True) is None
    monkeypatch.setattr(deployment_settings, "checkout_commit", lambda: "1a2b3c4d5e6f")
    package = metadata.version(deployment_settings.PACKAGE)
    found = deployment_settings.DeploymentSettings().version(production=True)
    assert found is not None and found.build_id == f"{package}-1a2b3c4d5e6f"
