"""The Temporal worker: the saga workflows on their task queue, each provider on its lane.

Run it with ``python worker.py`` (``make run`` does); ``CANCEL_WORKER_SERVES`` picks
what one process polls (``docs/lanes``: README "Sizing"). Connection comes from
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
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from pydantic_settings import BaseSettings
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker, WorkerDeploymentConfig
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.bulk import BulkSteering
from activities.heartbeat import HeartbeatingActivities
from activities.outbox_signals import AttemptLog
from activities.outcomes import OutcomeActivities, SubscriptionDirectory
from activities.providers import PROVIDERS, activity_methods
from activities.webhooks import WebhookActivities
from config.codec import CodecConfigurationError
from config.deployment import DeploymentSettings, MissingBuildId
from config.settings import (
    SERVES_WORKFLOWS,
    Environment,
    LaneLimitError,
    OrchestratorSettings,
    WebhookSettings,
    WorkerSettings,
    lane_limits,
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
from domain.lanes import lane_queue, provider_of
from domain.outcomes import WEBHOOKS_LANE
from starter.kinds import KINDS
from starter.releases import ReleaseRefused, adopt
from workflows import patches, versioning
from workflows.bulk_operation import BulkOperationWorkflow
from workflows.outcome_subscriptions import OutcomeSubscriptions
from workflows.subscriber_outbox import SubscriberOutbox
from workflows.webhook_delivery import WebhookDelivery

log = logging.getLogger("worker")

#: Every saga kind's workflow (``starter.kinds``).
SAGAS: Sequence[type] = tuple(spec.workflow for spec in KINDS)
#: What the sagas' worker runs: the sagas, and the operations that steer them in bulk.
WORKFLOWS: Sequence[type] = (*SAGAS, BulkOperationWorkflow)

#: What every sagas' worker runs beside the sagas: the outcome subscription store, the
#: subscribers' outboxes and the webhook deliveries (README "Outcome events").
OUTCOME_WORKFLOWS: Sequence[type] = (OutcomeSubscriptions, SubscriberOutbox, WebhookDelivery)

#: Our packages a workflow imports, shared by all runs with ``share_workflow_modules``.
WORKFLOW_PACKAGES = ("workflows", "domain")


#: Each provider's settings (``activities.providers``); one not given is read from the
#: environment (``STN_*``, ``REBILLY_*``, ``AIRALO_*``).
ProviderSettings = Mapping[str, BaseSettings]


@dataclass(frozen=True)
class ProviderClients:
    """Every provider's activities, bound to its HTTP client (owned by the worker process),
    and each provider lane's limit in calls per second (``None``: no limit)."""

    by_provider: Mapping[str, list[Callable[..., Any]]]
    limits: Mapping[str, float | None] = field(default_factory=dict)

    def activities(self) -> list[Callable[..., Any]]:
        return [bound for activities in self.by_provider.values() for bound in activities]

    @classmethod
    def of(
        cls, activities: Iterable[Callable[..., Any]], limits: Mapping[str, float | None] = {}
    ) -> ProviderClients:
        """Activity implementations (e.g. a test's fakes) grouped into their providers'
        lanes by their names (``provider.call``)."""
        by_provider: dict[str, list[Callable[..., Any]]] = {}
        for implementation in activities:
            name = activity._Definition.must_from_callable(implementation).name or ""
            by_provider.setdefault(provider_of(name), []).append(implementation)
        return cls(by_provider, dict(limits))


@contextlib.asynccontextmanager
async def provider_clients(
    settings: ProviderSettings | None = None, *, tracing: Tracing | None = None
) -> AsyncIterator[ProviderClients]:
    """Each provider's client, opened once; with ``tracing``, each HTTP call gets a span.

    Credentials live in these clients (sTN's and Rebilly's key headers) or in the
    activities (Airalo's cached bearer token), never in workflows. The lanes' limits
    come from ``CANCEL_<PROVIDER>_MAX_CALLS_PER_SECOND`` (``LaneLimitError`` names a
    wrong one).
    """
    given = settings or {}
    limits = lane_limits(entry.provider for entry in PROVIDERS)
    async with contextlib.AsyncExitStack() as stack:
        bound: dict[str, list[Callable[..., Any]]] = {}
        for entry in PROVIDERS:
            provider_settings = given.get(entry.provider) or entry.settings()
            http = await stack.enter_async_context(entry.http_client(provider_settings))
            if tracing is not None:
                tracing.instrument_provider_client(http)
            bound[entry.provider] = entry.bind(http, provider_settings)
        yield ProviderClients(bound, limits)


class UnknownPatchIds(ValueError):
    """``CANCEL_WORKER_HOLD_PATCHES`` names a patch the sagas do not know."""


class UnknownLane(ValueError):
    """``CANCEL_WORKER_SERVES`` names neither the workflows nor a provider's lane."""


def check_held_patches(held: frozenset[str]) -> None:
    """``CANCEL_WORKER_HOLD_PATCHES`` names only patches the sagas know (workflows/patches.py)."""
    unknown = sorted(held - patches.ALL)
    if unknown:
        raise UnknownPatchIds(
            f"CANCEL_WORKER_HOLD_PATCHES: unknown patch id(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(patches.ALL))}"
        )


def tuning_options(tuning: WorkerSettings, passthrough: Sequence[str] = ()) -> dict[str, Any]:
    """The ``Worker`` options ``CANCEL_WORKER_*`` set; an unset one keeps the SDK's default."""
    options: dict[str, Any] = {"max_cached_workflows": tuning.max_cached_workflows}
    shared = (*(WORKFLOW_PACKAGES if tuning.share_workflow_modules else ()), *passthrough)
    if shared:
        restrictions = SandboxRestrictions.default.with_passthrough_modules(*shared)
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
        held = patches.holding(tuning.hold_patches)
        options["patch_activation_callback"] = lambda asked: asked.patch_id not in held
    return options


# Options of a worker that runs activities only (a provider lane).
_ACTIVITY_OPTIONS = frozenset(
    {"max_concurrent_activities", "activity_task_poller_behavior", "deployment_config"}
)


class ProductWorkers:
    """The sagas' worker and one worker per provider lane, run together (``async with``).

    ``main`` polls the sagas' task queue: every workflow, and every activity for runs
    started before lanes. Each lane worker polls its provider's queue with the lane's
    limit, which the server enforces for all workers of that lane together.
    """

    def __init__(
        self,
        main: Worker | None,
        lanes: Mapping[str, Worker],
        closers: Sequence[Callable[[], Any]] = (),
    ) -> None:
        self.main = main
        self.lanes = dict(lanes)
        self._stack = contextlib.AsyncExitStack()
        self._closers = list(closers)

    @property
    def task_queues(self) -> list[str]:
        workers = ([self.main] if self.main else []) + list(self.lanes.values())
        return [worker.task_queue for worker in workers]

    async def __aenter__(self) -> ProductWorkers:
        for close in self._closers:  # closed after the workers stopped
            self._stack.push_async_callback(close)
        for worker in ([self.main] if self.main else []) + list(self.lanes.values()):
            await self._stack.enter_async_context(worker)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()


class UndeclaredVersioning(ValueError):
    """A versioned worker was given a workflow type ``workflows/versioning.py`` does not declare."""


def versioned(version: WorkerDeploymentVersion, runs: Sequence[type]) -> WorkerDeploymentConfig:
    """The deployment options of a worker of ``version`` running ``runs``: every type
    declared in ``workflows/versioning.py``, whose behaviour becomes the worker's default."""
    names = [workflow._Definition.must_from_class(run).name or run.__name__ for run in runs]
    missing = versioning.undeclared(names)
    if missing:
        raise UndeclaredVersioning(
            f"workflow type(s) {', '.join(missing)} not declared "
            f"{versioning.DEFAULT.name} in workflows/versioning.py"
        )
    return WorkerDeploymentConfig(
        version=version,
        use_worker_versioning=True,
        default_versioning_behavior=versioning.DEFAULT,
    )


def build_worker(
    client: Client,
    task_queue: str,
    clients: ProviderClients,
    tuning: WorkerSettings | None = None,
    *,
    workflows: Sequence[type] | None = None,
    passthrough: Sequence[str] = (),
    webhooks: WebhookSettings | None = None,
    environment: Environment | None = None,
    version: WorkerDeploymentVersion | None = None,
) -> ProductWorkers:
    """The workers this process runs for ``task_queue`` (``CANCEL_WORKER_SERVES``).

    ``workflows``: the saga workflows (default: every kind in ``starter.kinds``);
    ``passthrough``: more modules the workflow sandbox shares instead of re-importing
    (a test's own workflows). Beside them always: the outcome events' publishing (a
    local activity of the sagas' worker), their store and delivery workflows, and the
    webhooks lane that POSTs to subscribers (``webhooks``: ``CANCEL_WEBHOOK_*``;
    ``environment``: production refuses internal subscriber addresses).

    ``version``: every worker of the process (the sagas' and each lane's) polls as this
    version of the Worker Deployment (``config/deployment.py``), so a run's activities
    go to the lanes of the version its workflow runs on; ``None``: unversioned.
    """
    tuning = tuning or WorkerSettings()
    options = tuning_options(tuning, passthrough)
    runs = [*(workflows if workflows is not None else WORKFLOWS), *OUTCOME_WORKFLOWS]
    if version is not None:
        options["deployment_config"] = versioned(version, runs)
    webhooks = webhooks or WebhookSettings()
    directory = SubscriptionDirectory(webhooks.subscription_cache_seconds)
    deliveries = WebhookActivities(
        directory, webhooks, environment or OrchestratorSettings().environment
    )
    known = {SERVES_WORKFLOWS, WEBHOOKS_LANE, *clients.by_provider}
    unknown = sorted(tuning.serves - known)
    if unknown:
        raise UnknownLane(
            f"CANCEL_WORKER_SERVES: unknown {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    serves = tuning.serves or known
    main = None
    if SERVES_WORKFLOWS in serves:
        main = Worker(
            client,
            task_queue=task_queue,
            workflows=runs,
            # Runs started before lanes still call every provider on this queue; the
            # outcome events' publish runs here as the sagas' local activity; a bulk
            # operation steers sagas from here (through Temporal, no provider).
            activities=[
                *clients.activities(),
                OutcomeActivities(
                    directory, deliveries, AttemptLog(client), webhooks.inline_timeout_seconds
                ).publish,
                # The outboxes' first attempts and a replayed delivery's, local
                # activities (the retries: the lane).
                deliveries.deliver_batch,
                deliveries.deliver,
                *activity_methods(BulkSteering(client, task_queue)),
            ],
            interceptors=[HeartbeatingActivities()],
            # An activity on the sagas' own queue would otherwise start at once on this
            # worker, past any limit: every provider call goes through a lane.
            disable_eager_activity_execution=True,
            **options,
        )
    lanes = {}
    for provider, activities in clients.by_provider.items():
        if provider not in serves:
            continue
        lane_options = {name: value for name, value in options.items() if name in _ACTIVITY_OPTIONS}
        limit = clients.limits.get(provider)
        if limit is not None:
            lane_options["max_task_queue_activities_per_second"] = limit
        lanes[provider] = Worker(
            client,
            task_queue=lane_queue(task_queue, provider),
            activities=activities,
            interceptors=[HeartbeatingActivities()],
            **lane_options,
        )
    if WEBHOOKS_LANE in serves:
        lanes[WEBHOOKS_LANE] = Worker(
            client,
            task_queue=lane_queue(task_queue, WEBHOOKS_LANE),
            activities=[deliveries.deliver],
            interceptors=[HeartbeatingActivities()],
            **{name: value for name, value in options.items() if name in _ACTIVITY_OPTIONS},
        )
    return ProductWorkers(main, lanes, closers=[deliveries.aclose])


async def main() -> None:
    telemetry = TelemetrySettings()
    # JSON lines (or pretty); httpx's request lines stay silenced: sTN lookups carry
    # phone numbers (PII) in their URLs.
    configure_logging(telemetry)
    settings = OrchestratorSettings()
    tuning = WorkerSettings()
    deployment = DeploymentSettings()
    version = deployment.version(production=settings.environment is Environment.PRODUCTION)
    # Every setting is checked before anything connects: a wrong one stops the worker
    # here, named, not a new run (UnknownPatchIds, LaneLimitError, ValidationError).
    check_held_patches(tuning.hold_patches)
    lane_limits(entry.provider for entry in PROVIDERS)
    # One Runtime for the process: the SDK's metrics and ours on one Prometheus endpoint.
    process_runtime = runtime(telemetry.metrics_worker_address)
    tracing = start_tracing(telemetry, "cancellation-worker")
    try:
        client = await connect(runtime=process_runtime, interceptors=tracing_interceptors(tracing))
        async with provider_clients(tracing=tracing) as clients:
            workers = build_worker(client, settings.task_queue, clients, tuning, version=version)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            async with workers:
                routing = "unversioned"
                if version is not None:
                    # Ready once routable: the first release (or a local stack) makes
                    # its version current here; a later one waits for `cancelctl release`.
                    current = await adopt(client, version, deployment.on_start, workers.task_queues)
                    routing = f"version {version.deployment_name}:{version.build_id} " + (
                        "(current)" if current else "(not current: `cancelctl release`)"
                    )
                log.info(
                    "Worker polling task queue(s) %s as %s; lane limits %s; tracing %s",
                    ", ".join(repr(queue) for queue in workers.task_queues),
                    routing,
                    {lane: clients.limits.get(lane) for lane in workers.lanes} or "none served",
                    telemetry.tracing_exporter.value,
                )
                await stop.wait()
                log.info("Shutting down: finishing in-flight tasks")
    finally:
        if tracing is not None:
            tracing.shutdown()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except (
        CodecConfigurationError,
        ValidationError,
        UnknownPatchIds,
        LaneLimitError,
        UnknownLane,
        UndeclaredVersioning,
        MissingBuildId,
        ReleaseRefused,
    ) as error:
        # Production without a payload key (docs/security.md), a setting out of range,
        # an unknown held patch or lane: said, not a traceback.
        sys.exit(f"error: {error}")
