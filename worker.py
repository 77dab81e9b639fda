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
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import ValidationError
from temporalio.client import Client
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.airalo import AiraloActivities, AiraloTokens
from activities.heartbeat import HeartbeatingActivities
from activities.provider_http import json_http_client
from activities.rebilly import RebillyActivities, rebilly_http_client
from activities.stn import StnActivities, stn_http_client
from config.codec import CodecConfigurationError
from config.settings import (
    AiraloSettings,
    OrchestratorSettings,
    RebillySettings,
    StnSettings,
    WorkerSettings,
)
from config.telemetry import (
    TelemetrySettings,
    Tracing,
    configure_logging,
    runtime,
    start_tracing,
    tracing_interceptors,
)
from config.temporal import connect
from domain.common import Provider
from starter.kinds import KINDS

log = logging.getLogger("worker")

#: Every saga kind's workflow (``starter.kinds``).
WORKFLOWS: Sequence[type] = tuple(spec.workflow for spec in KINDS)

#: Our packages a workflow imports, shared by all runs with ``share_workflow_modules``.
WORKFLOW_PACKAGES = ("workflows", "domain")


@dataclass(frozen=True)
class ProviderClients:
    """One configured httpx client per provider, owned by the worker process."""

    stn: httpx.AsyncClient
    rebilly: httpx.AsyncClient
    airalo: httpx.AsyncClient
    # Airalo's bearer token, cached for the worker's lifetime (never per call).
    airalo_tokens: AiraloTokens
    # ``webhook_url`` sent when a future order is re-created (AIRALO_WEBHOOK_URL).
    airalo_webhook_url: str | None = None


@dataclass(frozen=True)
class ProviderSettings:
    stn: StnSettings = field(default_factory=StnSettings)
    rebilly: RebillySettings = field(default_factory=RebillySettings)
    airalo: AiraloSettings = field(default_factory=AiraloSettings)


def activities_of(clients: ProviderClients) -> list[Any]:
    """Every activity, bound to the injected provider HTTP clients."""
    stn = StnActivities(clients.stn)
    rebilly = RebillyActivities(clients.rebilly)
    airalo = AiraloActivities(clients.airalo, clients.airalo_tokens, clients.airalo_webhook_url)
    return [
        stn.submit_termination,
        stn.await_activation_final,
        stn.cancel_termination,
        stn.get_activation,
        rebilly.put_cancellation,
        rebilly.find_cancellation,
        rebilly.await_cancellation_completed,
        rebilly.reactivate_order,
        rebilly.delete_draft,
        airalo.list_future_orders,
        airalo.cancel_future_orders,
        airalo.create_future_order,
    ]


@contextlib.asynccontextmanager
async def provider_clients(
    settings: ProviderSettings | None = None, *, tracing: Tracing | None = None
) -> AsyncIterator[ProviderClients]:
    """The provider clients; with ``tracing``, each HTTP call gets a client span."""
    settings = settings or ProviderSettings()
    async with (
        stn_http_client(settings.stn) as stn_http,
        rebilly_http_client(settings.rebilly) as rebilly,
        json_http_client(
            settings.airalo.api_root, settings.airalo.timeout_seconds, provider=Provider.AIRALO
        ) as airalo,
    ):
        if tracing is not None:
            for http in (stn_http, rebilly, airalo):
                tracing.instrument_provider_client(http)
        # Credentials live in these clients (sTN's and Rebilly's key headers) or
        # in the activities (Airalo's cached bearer token), never in workflows.
        yield ProviderClients(
            stn=stn_http,
            rebilly=rebilly,
            airalo=airalo,
            airalo_tokens=AiraloTokens.from_settings(airalo, settings.airalo),
            airalo_webhook_url=settings.airalo.webhook_url,
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
        activities=activities_of(clients),
        interceptors=[HeartbeatingActivities()],
        **tuning_options(tuning or WorkerSettings()),
    )


async def main() -> None:
    telemetry = TelemetrySettings()
    # JSON lines (or pretty); httpx's request lines stay silenced: sTN lookups carry
    # phone numbers (PII) in their URLs.
    configure_logging(telemetry)
    settings = OrchestratorSettings()
    # One Runtime for the process: the SDK's metrics and ours on one Prometheus endpoint.
    process_runtime = runtime(telemetry.metrics_worker_address)
    tracing = start_tracing(telemetry, "cancellation-worker")
    try:
        client = await connect(runtime=process_runtime, interceptors=tracing_interceptors(tracing))
        async with provider_clients(tracing=tracing) as clients:
            worker = build_worker(client, settings.task_queue, clients, WorkerSettings())
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
    except (CodecConfigurationError, ValidationError) as error:
        # Production without a payload key (docs/security.md), a setting out of range:
        # said, not a traceback.
        sys.exit(f"error: {error}")
