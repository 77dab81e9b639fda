"""``create_app``: the API's routes, authentication, limits, error answers and telemetry.

Telemetry (:class:`ApiTelemetry`, built by ``python -m starter.api``; see
``docs/observability.md``) adds, on the process's Prometheus endpoint:

* ``cancel_api_requests_total{route, status}``: every request, by route template;
* ``cancel_api_sagas_started_total{kind}``: runs the API's Temporal client started
  (an attach to a running saga or an answered redelivery starts nothing);
* ``cancel_api_webhook_notices_total{provider, outcome}``: provider webhooks;
* ``cancel_sagas_needing_attention{kind}``: a gauge of the running sagas waiting in
  ``NEEDS_ATTENTION``, counted from visibility every ``attention_refresh_seconds``;
* ``cancel_sagas_in_jeopardy{cause}``: a gauge of the running sagas in jeopardy
  (``SagaJeopardy``, ``domain.outcomes.JeopardyCause``), from visibility on the same period;
* ``cancel_lane_backlog{lane}``, ``cancel_lane_oldest_waiting_seconds{lane}``,
  ``cancel_lane_limit_per_second{lane}``: each provider lane as Temporal reports it
  (``starter.lanes``), refreshed on the same period;
* ``cancel_sagas_due{provider, within}``: running sagas due within the next hour and
  day (``starter.forecast``), on the same period;

and, when tracing is on, a server span per request whose trace the Temporal client
carries into the workflow start.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio import client as temporal_client
from temporalio.common import MetricCounter, MetricMeter
from temporalio.runtime import Runtime

from config.settings import ApiSettings, OrchestratorSettings
from config.telemetry import Tracing, tracing_interceptors
from config.temporal import connect
from domain import search_attributes as sa
from domain.common import SagaPhase
from domain.outcomes import JeopardyCause
from starter import forecast, lanes
from starter.api import errors, openapi
from starter.api.auth import Authenticator
from starter.api.gateway import TemporalGateway
from starter.api.limits import BodySizeLimit
from starter.api.routes import bulk as bulk_routes
from starter.api.routes import events, health, sagas, starts, subscriptions, webhooks
from starter.api.routes import lanes as lanes_routes
from starter.api.routes.common import matchable
from starter.kinds import KINDS

log = logging.getLogger(__name__)

API_REQUESTS = "cancel_api_requests_total"
API_SAGAS_STARTED = "cancel_api_sagas_started_total"
API_WEBHOOK_NOTICES = "cancel_api_webhook_notices_total"
SAGAS_NEEDING_ATTENTION = "cancel_sagas_needing_attention"
SAGAS_IN_JEOPARDY = "cancel_sagas_in_jeopardy"
LANE_BACKLOG = "cancel_lane_backlog"
LANE_OLDEST_WAITING = "cancel_lane_oldest_waiting_seconds"
LANE_LIMIT = "cancel_lane_limit_per_second"
SAGAS_DUE = "cancel_sagas_due"
#: The windows of the ``cancel_sagas_due`` gauge (``cancelctl upcoming`` gives any other).
DUE_WITHIN = {"1h": timedelta(hours=1), "24h": timedelta(days=1)}
#: Webhook routes and the provider each is from.
WEBHOOK_ROUTES = {"POST /v1/webhooks/airalo": "airalo", "POST /v1/webhooks/rebilly": "rebilly"}


@dataclass(frozen=True)
class ApiTelemetry:
    """What the API process observes itself with.

    ``runtime`` is the process's one temporalio Runtime: the Temporal client uses it,
    and when it serves metrics, its meter records the API's own beside the SDK's.
    """

    runtime: Runtime | None = None
    tracing: Tracing | None = None
    attention_refresh_seconds: float = 30.0

    @property
    def meter(self) -> MetricMeter | None:
        """The runtime's meter; ``None`` without metrics (the SDK's no-op meter then)."""
        if self.runtime is None or self.runtime.metric_meter is MetricMeter.noop:
            return None
        return self.runtime.metric_meter


def create_app(
    api_settings: ApiSettings | None = None,
    orchestrator_settings: OrchestratorSettings | None = None,
    gateway: TemporalGateway | None = None,
    *,
    telemetry: ApiTelemetry | None = None,
) -> FastAPI:
    api_settings = api_settings or ApiSettings()
    telemetry = telemetry or ApiTelemetry()
    meter = telemetry.meter
    gateway = gateway or TemporalGateway(
        api_settings.temporal_timeout_seconds, _connector(telemetry, meter)
    )
    lifespan = None
    if meter is not None:
        lifespan = _refreshing_fleet_gauges(
            gateway,
            meter,
            telemetry.attention_refresh_seconds,
            api_settings,
            (orchestrator_settings or OrchestratorSettings()).task_queue,
        )
    app = FastAPI(
        title=openapi.TITLE,
        version=openapi.VERSION,
        description=openapi.DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.api_settings = api_settings
    app.state.orchestrator_settings = orchestrator_settings or OrchestratorSettings()
    app.state.authenticator = Authenticator(api_settings.keys)
    app.state.gateway = gateway
    routers = (
        starts.build_router(),
        events.build_router(),
        sagas.router,
        lanes_routes.router,
        bulk_routes.router,
        webhooks.router,
        subscriptions.router,
    )
    for router in (*routers, health.router):
        app.include_router(router)
    subscriptions.install_webhooks(app)
    errors.install(app, api_settings.retry_after_seconds)
    openapi.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=api_settings.max_body_bytes)
    if meter is not None:
        # Outermost: it also counts what BodySizeLimit refuses.
        app.add_middleware(RequestMetrics, meter=meter, routes=app.routes)
    if telemetry.tracing is not None:
        telemetry.tracing.instrument_api(app)
    return app


def _connector(
    telemetry: ApiTelemetry, meter: MetricMeter | None
) -> Callable[[], Awaitable[temporal_client.Client]]:
    """How the gateway connects: the process's Runtime, tracing, saga-start counting."""
    interceptors: list[temporal_client.Interceptor] = tracing_interceptors(telemetry.tracing)
    if meter is not None:
        interceptors.append(CountSagaStarts(meter))
    return functools.partial(connect, runtime=telemetry.runtime, interceptors=interceptors)


# -- requests and webhooks ---------------------------------------------------------------


def _template(route: Any) -> str | None:
    """The route's path as the OpenAPI document names it (no ``:convertor``)."""
    return getattr(route, "path_format", None) or getattr(route, "path", None)


def route_of(scope: Scope, routes: Sequence[Any]) -> str:
    """``POST /v1/sagas/{workflow_id}/revoke``: the method and the template of the
    :func:`matchable` route the request matches (never the path itself: it holds
    ids), or ``unmatched``."""
    candidate = None
    for route in routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            candidate = _template(route)
            break
        if match == Match.PARTIAL and candidate is None:
            candidate = _template(route)
    return f"{scope['method']} {candidate}" if candidate else "unmatched"


def notice_outcome(status: int, body: bytes) -> str:
    """What became of a webhook: ``routed`` to a saga, ``unrouted`` (verified, about
    nothing we hold), ``unauthenticated`` (forged), ``unconfigured``, ``invalid``, ``error``."""
    if status == 200:
        try:
            routed = json.loads(body).get("routedTo")
        except (ValueError, AttributeError):
            routed = None
        return "routed" if routed else "unrouted"
    if status == 401:
        return "unauthenticated"
    if status == 503:
        return "unconfigured"
    if status in (400, 422):
        return "invalid"
    return "error"


class RequestMetrics:
    """Pure ASGI middleware: counts every request by route and status, and every
    provider webhook by provider and outcome (read from the answer it got)."""

    def __init__(self, app: ASGIApp, meter: MetricMeter, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = matchable(routes)
        self.requests = meter.create_counter(API_REQUESTS, "API requests by route and status")
        self.notices = meter.create_counter(
            API_WEBHOOK_NOTICES, "Provider webhooks by provider and outcome"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = route_of(scope, self.routes)
        webhook_from = WEBHOOK_ROUTES.get(route)
        status = 500  # an exception escaping the app becomes a 500 outside this middleware
        body = bytearray()

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif webhook_from and message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            self.requests.add(1, {"route": route, "status": str(status)})
            if webhook_from:
                self.notices.add(
                    1, {"provider": webhook_from, "outcome": notice_outcome(status, bytes(body))}
                )


# -- saga starts -------------------------------------------------------------------------


def kind_of(workflow_type: str) -> str:
    """``LineTermination`` → ``LINE_TERMINATION`` (the ``CancellationKind`` values); a
    workflow type that is no saga kind's stays as it is."""
    spec = KINDS.by_workflow_type(workflow_type)
    return str(spec.kind) if spec is not None else workflow_type


class CountSagaStarts(temporal_client.Interceptor):
    """Counts the workflow runs the API's client starts, by saga kind. A start refused
    because the saga is already running raises, and so counts nothing."""

    def __init__(self, meter: MetricMeter) -> None:
        self.started = meter.create_counter(API_SAGAS_STARTED, "Sagas the API started, by kind")

    def intercept_client(
        self, next: temporal_client.OutboundInterceptor
    ) -> temporal_client.OutboundInterceptor:
        return _CountingStarts(next, self.started)


class _CountingStarts(temporal_client.OutboundInterceptor):
    def __init__(self, next: temporal_client.OutboundInterceptor, started: MetricCounter) -> None:
        super().__init__(next)
        self._started = started

    async def start_workflow(
        self, input: temporal_client.StartWorkflowInput
    ) -> temporal_client.WorkflowHandle[Any, Any]:
        handle = await super().start_workflow(input)
        self._started.add(1, {"kind": kind_of(input.workflow)})
        return handle


# -- sagas needing attention ---------------------------------------------------------------


def attention_query(kind: str) -> str:
    return (
        f'{sa.CANCELLATION_STATUS.name} = "{SagaPhase.NEEDS_ATTENTION.value}" '
        f'AND {sa.CANCELLATION_KIND.name} = "{kind}" AND ExecutionStatus = "Running"'
    )


def jeopardy_query(cause: str) -> str:
    return f'{sa.SAGA_JEOPARDY.name} = "{cause}" AND ExecutionStatus = "Running"'


def _refreshing_fleet_gauges(
    gateway: TemporalGateway,
    meter: MetricMeter,
    every: float,
    settings: ApiSettings,
    task_queue: str,
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """A lifespan that keeps the fleet's gauges current: ``cancel_sagas_needing_attention``
    and each provider lane's backlog, oldest waiting call and limit.

    A gauge of "how many now" cannot be summed from the worker's counters (a saga
    leaves NEEDS_ATTENTION when an operator resolves it, or its run is terminated; a
    lane's backlog is the server's), so it is asked of Temporal on a fixed period:
    visibility (eventually consistent) for the sagas, the task queues for the lanes.
    """
    attention = meter.create_gauge(
        SAGAS_NEEDING_ATTENTION, "Running sagas in NEEDS_ATTENTION, by kind (from visibility)"
    )
    jeopardy = meter.create_gauge(
        SAGAS_IN_JEOPARDY, "Running sagas in jeopardy, by cause (from visibility)"
    )
    backlog = meter.create_gauge(LANE_BACKLOG, "Provider calls waiting in each lane")
    oldest = meter.create_gauge_float(
        LANE_OLDEST_WAITING, "How long each lane's oldest waiting call has waited", "s"
    )
    limit = meter.create_gauge_float(
        LANE_LIMIT, "Each lane's limit in calls per second (0: no limit)"
    )
    due = meter.create_gauge(
        SAGAS_DUE, "Running sagas due within the next hour / day, by provider (forecast)"
    )
    timeout = timedelta(seconds=settings.temporal_timeout_seconds)

    async def refresh() -> None:
        failing = False
        while True:
            try:
                client = await gateway.client()
                for spec in KINDS:
                    query = attention_query(spec.kind)
                    found = await client.count_workflows(query, rpc_timeout=timeout)
                    attention.set(found.count, {"kind": str(spec.kind)})
                for cause in JeopardyCause:
                    found = await client.count_workflows(jeopardy_query(cause), rpc_timeout=timeout)
                    jeopardy.set(found.count, {"cause": str(cause)})
                for lane in await lanes.describe_lanes(client, task_queue):
                    labels = {"lane": lane.provider}
                    backlog.set(lane.backlog, labels)
                    oldest.set(lane.oldest_waiting_seconds, labels)
                    limit.set(lane.limit_per_second or 0.0, labels)
                    for within, span in DUE_WITHIN.items():
                        count = await forecast.due_within(client, task_queue, lane.provider, span)
                        due.set(count, {"provider": lane.provider, "within": within})
                failing = False
            except Exception as error:  # Temporal down: keep the last values, try again
                # Said once per outage, not every period.
                log.log(
                    logging.DEBUG if failing else logging.WARNING,
                    "could not refresh the sagas needing attention and the lanes: %s",
                    error,
                )
                failing = True
            await asyncio.sleep(every)  # the refresh period, not a synchronisation

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(refresh())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return lifespan
