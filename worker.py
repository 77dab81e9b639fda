"""The Temporal worker: every saga workflow and provider activity, one task queue.

Run it with ``python worker.py`` (``make run`` does). Connection comes from
Temporal's environment configuration (``TEMPORAL_ADDRESS``, ...); provider URLs
and keys from ``STN_*``, ``REBILLY_*``, ``AIRALO_*`` (see ``config/settings.py``);
logs, metrics (Prometheus on ``CANCEL_METRICS_WORKER_ADDRESS``, default
127.0.0.1:9464) and tracing from ``config/telemetry.py`` (``docs/observability.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_settings import BaseSettings
from temporalio.client import Client
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.heartbeat import HeartbeatingActivities
from activities.providers import PROVIDERS
from config.codec import CodecConfigurationError
from config.settings import OrchestratorSettings, WorkerSettings
from config.telemetry import (
    TelemetrySettings,
    Tracing,
    configure_logging,
    runtime,
    start_tracing,
    tracing_interceptors,
)
from config.temporal import connect
from starter.kinds import KINDS
from workflows import patches

log = logging.getLogger("worker")

#: Every saga kind's workflow (``starter.kinds``).
WORKFLOWS: Sequence[type] = tuple(spec.workflow for spec in KINDS)

#: Our packages a workflow imports, shared by all runs with ``share_workflow_modules``.
WORKFLOW_PACKAGES = ("workflows", "domain")


#: Each provider's settings (``activities.providers``); one not given is read from the
#: environment (``STN_*``, ``REBILLY_*``, ``AIRALO_*``).
ProviderSettings = Mapping[str, BaseSettings]


@dataclass(frozen=True)
class ProviderClients:
    """Every provider's activities, bound to its HTTP client (owned by the worker process)."""

    by_provider: Mapping[str, list[Callable[..., Any]]]

    def activities(self) -> list[Callable[..., Any]]:
        return [bound for activities in self.by_provider.values() for bound in activities]


@contextlib.asynccontextmanager
async def provider_clients(
    settings: ProviderSettings | None = None, *, tracing: Tracing | None = None
) -> AsyncIterator[ProviderClients]:
    """Each provider's client, opened once; with ``tracing``, each HTTP call gets a span.

    Credentials live in these clients (sTN's and Rebilly's key headers) or in the
    activities (Airalo's cached bearer token), never in workflows.
    """
    given = settings or {}
    async with contextlib.AsyncExitStack() as stack:
        bound: dict[str, list[Callable[..., Any]]] = {}
        for entry in PROVIDERS:
            provider_settings = given.get(entry.provider) or entry.settings()
            http = await stack.enter_async_context(entry.http_client(provider_settings))
            if tracing is not None:
                tracing.instrument_provider_client(http)
            bound[entry.provider] = entry.bind(http, provider_settings)
        yield ProviderClients(bound)


class UnknownPatchIds(ValueError):
    """``CANCEL_WORKER_HOLD_PATCHES`` names a patch the sagas do not know."""


def check_held_patches(held: frozenset[str]) -> None:
    """``CANCEL_WORKER_HOLD_PATCHES`` names only patches the sagas know (workflows/patches.py)."""
    unknown = sorted(held - patches.ALL)
    if unknown:
        raise UnknownPatchIds(
            f"CANCEL_WORKER_HOLD_PATCHES: unknown patch id(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(patches.ALL))}"
        )


def tuning_options(tuning: WorkerSettings) -> dict[str, Any]:
    """The ``Worker`` options ``CANCEL_WORKER_*`` set; an unset one keeps the SDK's default."""
    options: dict[str, Any] = {"max_cached_workflows": tuning.max_cached_workflows}
    if tuning.share_workflow_modules:
        restrictions = SandboxRestrictions.default.with_passthrough_modules(*WORKFLOW_PACKAGES)
        options["workflow_runner"] = SandboxedWorkflowRunner(restrictions=restrictions)
    if tuning.max_concurrent_workflow_tasks is not None:
        options["max_concurrent_workflow_tasks"] = tuning.max_concurrent_workflow_tasks
    if tuning.max_concurrent_activities is not None:
        options["max_concurrent_activities"] = tuning.max_concurrent_activities
    if tuning.workflow_task_pollers is not None:
        options["workflow_task_poller_behavior"] = PollerBehaviorSimpleMaximum(
            tuning.workflow_task_pollers
        )
    if tuning.activity_task_pollers is not None:
        options["activity_task_poller_behavior"] = PollerBehaviorSimpleMaximum(
            tuning.activity_task_pollers
        )
    if tuning.max_task_queue_activities_per_second is not None:
        options["max_task_queue_activities_per_second"] = (
            tuning.max_task_queue_activities_per_second
        )
    if tuning.hold_patches:
        check_held_patches(tuning.hold_patches)
        held = tuning.hold_patches
        options["patch_activation_callback"] = lambda asked: asked.patch_id not in held
    return options


def build_worker(
    client: Client,
    task_queue: str,
    clients: ProviderClients,
    tuning: WorkerSettings | None = None,
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=clients.activities(),
        interceptors=[HeartbeatingActivities()],
        **tuning_options(tuning or WorkerSettings()),
    )


async def main() -> None:
    telemetry = TelemetrySettings()
    # JSON lines (or pretty); httpx's request lines stay silenced: sTN lookups carry
    # phone numbers (PII) in their URLs.
    configure_logging(telemetry)
    settings = OrchestratorSettings()
    tuning = WorkerSettings()
    # A rolling upgrade's mistake stops the worker before it connects, not a new run.
    check_held_patches(tuning.hold_patches)
    # One Runtime for the process: the SDK's metrics and ours on one Prometheus endpoint.
    process_runtime = runtime(telemetry.metrics_worker_address)
    tracing = start_tracing(telemetry, "cancellation-worker")
    try:
        client = await connect(runtime=process_runtime, interceptors=tracing_interceptors(tracing))
        async with provider_clients(tracing=tracing) as clients:
            worker = build_worker(client, settings.task_queue, clients, tuning)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            log.info(
                "Worker polling task queue %r; tracing %s",
                settings.task_queue,
                telemetry.tracing_exporter.value,
            )
            async with worker:
                await stop.wait()
                log.info("Shutting down: finishing in-flight tasks")
    finally:
        if tracing is not None:
            tracing.shutdown()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except (CodecConfigurationError, ValidationError, UnknownPatchIds) as error:
        # Production without a payload key (docs/security.md), a setting out of range,
        # an unknown held patch: said, not a traceback.
        sys.exit(f"error: {error}")
