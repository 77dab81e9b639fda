"""Releases as an operator runs them: the Worker Deployment's versions (``cancelctl release``).

A release is a new version (build id) of the Worker Deployment (``config/deployment.py``),
started beside the current one (blue-green: README "Releases"). The server routes new
runs to the deployment's current version, or a share of them to a ramping one. Every
workflow type runs AUTO_UPGRADE (``workflows/versioning.py``): a run moves to the current
version at its next workflow task. A version no longer current is *draining* while runs
pinned to it are open (none of ours; a run pinned by an operator's override would be),
then *drained*: only then may its workers stop.

Everything here is the SDK's ``workflow_service`` RPCs (DescribeWorkerDeployment,
SetWorkerDeploymentCurrentVersion, SetWorkerDeploymentRampingVersion) and visibility
(open runs per version); the worker uses :func:`adopt` to become current on its first
release.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from datetime import datetime

from temporalio.api.enums.v1 import VersionDrainageStatus, WorkerDeploymentVersionStatus
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    DescribeWorkerDeploymentVersionRequest,
    SetWorkerDeploymentCurrentVersionRequest,
    SetWorkerDeploymentRampingVersionRequest,
)
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.service import RPCError, RPCStatusCode

from config.deployment import OnStart, build_id_problem, name_problem
from domain.common import CamelModel, FieldProblem, InvalidRequest

log = logging.getLogger(__name__)

IDENTITY = "cancelctl release"

_STATUS = {
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_INACTIVE: "inactive",
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_CURRENT: "current",
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_RAMPING: "ramping",
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINING: "draining",
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINED: "drained",
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_CREATED: "created",
}
_DRAINAGE = {
    VersionDrainageStatus.VERSION_DRAINAGE_STATUS_DRAINING: "draining",
    VersionDrainageStatus.VERSION_DRAINAGE_STATUS_DRAINED: "drained",
}


class ReleaseRefused(Exception):
    """A release step that would strand runs or name a version the deployment lacks (exit 1)."""


class VersionView(CamelModel):
    """One version of the deployment, as the server and visibility report it."""

    build_id: str
    # current, ramping, draining, drained, inactive (never current), created.
    status: str
    # Of a version that is neither current nor ramping: "draining" while runs pinned to
    # it are open, then "drained" (its workers may stop); None otherwise.
    drainage: str | None
    created: datetime | None
    # When it last stopped being current or ramping (a rollback goes back to the latest).
    deactivated: datetime | None
    # Open runs whose last task ran on this version (visibility, eventually consistent).
    open_runs: int = 0


class DeploymentView(CamelModel):
    name: str
    current_build_id: str | None
    ramping_build_id: str | None
    ramping_percentage: float
    versions: list[VersionView]

    def version(self, build_id: str) -> VersionView | None:
        return next((v for v in self.versions if v.build_id == build_id), None)

    def rollback_target(self) -> str | None:
        """The version that was current (or ramping) last before the current one took
        over (``None``: there is none). The server does not say which of the two it was:
        ``cancelctl release rollback --to`` names the version instead."""
        before = [
            v
            for v in self.versions
            if v.build_id != self.current_build_id and v.deactivated is not None
        ]
        if not before:
            return None
        return max(before, key=lambda v: v.deactivated or datetime.min).build_id


def check_deployment_name(name: str) -> None:
    problem = name_problem(name)
    if problem:
        raise InvalidRequest([FieldProblem(field="deployment", rule=problem)])


def check_build_id(build_id: str, field: str = "buildId") -> None:
    problem = build_id_problem(build_id)
    if problem:
        raise InvalidRequest([FieldProblem(field=field, rule=problem)])


def check_percentage(percentage: float) -> None:
    if not 0 < percentage < 100:
        raise InvalidRequest(
            [
                FieldProblem(
                    field="percent",
                    rule="must be a share of new runs above 0 and below 100 "
                    "(100 is `release promote`)",
                )
            ]
        )


def _time(stamp: object) -> datetime | None:
    if stamp is None or not getattr(stamp, "seconds", 0):
        return None
    return stamp.ToDatetime().astimezone()  # type: ignore[attr-defined,no-any-return]


def _version_query(name: str, build_id: str) -> str:
    # The server writes "<name>:<build id>" (older servers "<name>.<build id>"); values
    # are checked (check_deployment_name, build ids from the server): nothing to escape.
    return (
        f"TemporalWorkerDeploymentVersion IN ('{name}:{build_id}', '{name}.{build_id}') "
        "AND ExecutionStatus = 'Running'"
    )


async def describe(client: Client, name: str) -> DeploymentView | None:
    """The deployment's routing and versions; ``None`` when no worker of it ever polled."""
    try:
        described = await client.workflow_service.describe_worker_deployment(
            DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=name)
        )
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    info = described.worker_deployment_info
    routing = info.routing_config
    versions = []
    for summary in info.version_summaries:
        build_id = summary.deployment_version.build_id
        drainage = _DRAINAGE.get(summary.drainage_info.status) if summary.drainage_info else None
        versions.append(
            VersionView(
                build_id=build_id,
                status=_STATUS.get(summary.status, "unknown"),
                drainage=drainage,
                created=_time(summary.create_time),
                deactivated=_time(summary.last_deactivation_time),
                open_runs=(await client.count_workflows(_version_query(name, build_id))).count,
            )
        )
    versions.sort(key=lambda v: v.created or datetime.min.astimezone(), reverse=True)
    return DeploymentView(
        name=name,
        current_build_id=routing.current_deployment_version.build_id or None,
        ramping_build_id=routing.ramping_deployment_version.build_id or None,
        ramping_percentage=routing.ramping_version_percentage,
        versions=versions,
    )


async def _must_describe(client: Client, name: str) -> DeploymentView:
    view = await describe(client, name)
    if view is None:
        raise ReleaseRefused(f"no worker of deployment {name!r} has polled this namespace yet")
    return view


def _must_know(view: DeploymentView, build_id: str) -> VersionView:
    found = view.version(build_id)
    if found is None:
        known = ", ".join(v.build_id for v in view.versions) or "none"
        raise ReleaseRefused(
            f"deployment {view.name!r} has no version {build_id!r} (its workers have not "
            f"polled yet?); versions: {known}"
        )
    return found


async def set_current(client: Client, name: str, build_id: str) -> None:
    """Make ``build_id`` the current version: new runs and every AUTO_UPGRADE run go to it.

    The server refuses a version no worker polls, or one whose workers miss a task queue
    the current version's poll (a lane left out): said as Temporal's reason.
    """
    await client.workflow_service.set_worker_deployment_current_version(
        SetWorkerDeploymentCurrentVersionRequest(
            namespace=client.namespace, deployment_name=name, build_id=build_id, identity=IDENTITY
        )
    )


async def set_ramping(client: Client, name: str, build_id: str | None, percentage: float) -> None:
    """Send ``percentage`` of new runs (by workflow id) to ``build_id``; ``None``: no ramp."""
    await client.workflow_service.set_worker_deployment_ramping_version(
        SetWorkerDeploymentRampingVersionRequest(
            namespace=client.namespace,
            deployment_name=name,
            build_id=build_id or "",
            percentage=percentage if build_id else 0.0,
            identity=IDENTITY,
        )
    )


async def ramp(client: Client, name: str, build_id: str, percentage: float) -> DeploymentView:
    check_percentage(percentage)
    view = await _must_describe(client, name)
    _must_know(view, build_id)
    if build_id == view.current_build_id:
        raise ReleaseRefused(f"{build_id!r} is already the current version: nothing to ramp")
    await set_ramping(client, name, build_id, percentage)
    return await _must_describe(client, name)


async def promote(client: Client, name: str, build_id: str) -> DeploymentView:
    """``build_id`` becomes current (a ramp of it ends); the version before it drains."""
    view = await _must_describe(client, name)
    _must_know(view, build_id)
    if build_id != view.current_build_id:
        await set_current(client, name, build_id)
    return await _must_describe(client, name)


async def rollback(client: Client, name: str, to: str | None = None) -> tuple[str, DeploymentView]:
    """Undo the last step: a ramp in progress ends (new runs all go to the current version
    again); without one, the version current before (or ``to``) becomes current again.
    Returns what was done, and the deployment after it."""
    view = await _must_describe(client, name)
    if to is not None:
        _must_know(view, to)
        if to == view.current_build_id:
            raise ReleaseRefused(f"{to!r} is already the current version")
        await set_current(client, name, to)
        done = f"{to} is current again (was {view.current_build_id})"
    elif view.ramping_build_id is not None:
        await set_ramping(client, name, None, 0.0)
        done = f"ramp of {view.ramping_build_id} ended; new runs go to {view.current_build_id}"
    else:
        target = view.rollback_target()
        if target is None:
            raise ReleaseRefused(f"deployment {name!r} has no version that was current before")
        await set_current(client, name, target)
        done = f"{target} is current again (was {view.current_build_id})"
    return done, await _must_describe(client, name)


async def adopt(
    client: Client,
    version: WorkerDeploymentVersion,
    on_start: OnStart,
    task_queues: Iterable[str],
    *,
    within: float = 60.0,
) -> bool:
    """Once this worker's ``task_queues`` are registered to its version, make the version
    current if ``on_start`` says so (``first``: only while the deployment has no current
    version). Returns whether the version is current. Several workers of one version may
    do this at once: whoever is second finds it current."""
    name, build_id = version.deployment_name, version.build_id
    expected = set(task_queues)
    deadline = time.monotonic() + within
    while True:
        registered = await _registered_queues(client, version)
        if expected <= registered:
            break
        if time.monotonic() > deadline:
            raise ReleaseRefused(
                f"version {name}:{build_id} was not registered for "
                f"{', '.join(sorted(expected - registered))} within {within:.0f} s"
            )
        await asyncio.sleep(0.2)
    while True:
        view = await describe(client, name)
        if view is None:
            # The version is registered; the deployment's own record (a system workflow)
            # follows a moment later, longer on a loaded server: NOT_FOUND until then.
            if time.monotonic() > deadline:
                raise ReleaseRefused(
                    f"deployment {name!r} not described within {within:.0f} s of its "
                    f"version {build_id} being registered"
                )
            await asyncio.sleep(0.2)
            continue
        if view.current_build_id == build_id:
            return True
        if on_start is OnStart.FIRST and view.current_build_id is not None:
            return False
        try:
            await set_current(client, name, build_id)
        except RPCError as error:
            # Another worker of the deployment changed it meanwhile: look again.
            if time.monotonic() > deadline:
                raise
            log.info("setting %s:%s current: %s; trying again", name, build_id, error.message)
            await asyncio.sleep(0.5)


async def _registered_queues(client: Client, version: WorkerDeploymentVersion) -> set[str]:
    try:
        described = await client.workflow_service.describe_worker_deployment_version(
            DescribeWorkerDeploymentVersionRequest(
                namespace=client.namespace, deployment_version=version._to_proto()
            )
        )
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return set()
        raise
    return {queue.name for queue in described.worker_deployment_version_info.task_queue_infos}
