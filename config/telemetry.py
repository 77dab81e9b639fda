"""Telemetry of the worker and the API: logs, Prometheus metrics, OpenTelemetry traces.

Settings come from the environment (``CANCEL_`` prefix, :class:`TelemetrySettings`);
``docs/observability.md`` describes every log field, metric and span.

* **Logs** (:func:`configure_logging`): JSON lines by default, ``pretty`` for a person.
* **Metrics**: one temporalio :class:`~temporalio.runtime.Runtime` per process
  (:func:`runtime`) serves Prometheus on the process's port. The SDK's own metrics
  and ours (recorded through the SDK's metric meters) share that endpoint.
* **Tracing** (:func:`start_tracing`, off by default): the SDK's ``TracingInterceptor``
  carries the trace from the API's request through the workflow into each activity,
  whose provider HTTP calls get client spans.

Observability never stops the service: a metrics port that is taken is logged as an
error and the process runs without the endpoint.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

import httpx
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.client import Interceptor
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from config import logs
from config.logs import LogFormat

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.instrumentation.httpx import RequestInfo

log = logging.getLogger(__name__)

#: Histogram of provider HTTP calls (``activities/provider_http.py`` records it).
PROVIDER_CALL_SECONDS = "cancel_provider_call_duration_seconds"
#: Its buckets in seconds: providers answer in tens of milliseconds to seconds, and
#: a call is cut at its timeout (15 s by default).
PROVIDER_CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)
#: Where Core (the SDK's Rust part) logs go: through Python logging, so they are JSON too.
CORE_LOGGER = "temporalio.core"

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class TracingExporter(StrEnum):
    NONE = "none"
    OTLP = "otlp"
    CONSOLE = "console"


class TelemetrySettings(BaseSettings):
    """Logs, metrics and tracing of the worker and the API. Env prefix ``CANCEL_``.

    An empty metrics address (``CANCEL_METRICS_WORKER_ADDRESS=``) turns that
    process's endpoint off. ``CANCEL_OTLP_ENDPOINT`` unset: the exporter's own
    default or the standard ``OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT``.
    """

    model_config = SettingsConfigDict(env_prefix="CANCEL_", extra="ignore")

    log_format: LogFormat = LogFormat.JSON
    log_level: LogLevel = "INFO"
    metrics_worker_address: str = "127.0.0.1:9464"
    metrics_api_address: str = "127.0.0.1:9465"
    tracing_exporter: TracingExporter = TracingExporter.NONE
    otlp_endpoint: str | None = None
    # How often the API counts the sagas in NEEDS_ATTENTION (a gauge, from visibility).
    attention_refresh_seconds: float = Field(default=30.0, gt=0)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


def configure_logging(settings: TelemetrySettings) -> None:
    """Every logger of the process in the configured format and level (see ``config.logs``)."""
    logs.install(settings.log_format, settings.log_level)


def _core_logging() -> LoggingConfig:
    return LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger(CORE_LOGGER)),
    )


def runtime(bind_address: str | None) -> Runtime:
    """The process's temporalio Runtime, serving Prometheus on ``bind_address``
    (``host:port``; empty or ``None``: no endpoint). Create one per process and pass
    it to every client (``config.temporal.connect(runtime=...)``).

    A port that cannot be bound is logged as an error and the Runtime comes without
    the endpoint: telemetry must not keep sagas from running.
    """
    if bind_address:
        prometheus = PrometheusConfig(
            bind_address=bind_address,
            histogram_bucket_overrides={PROVIDER_CALL_SECONDS: PROVIDER_CALL_BUCKETS},
        )
        try:
            served = Runtime(telemetry=TelemetryConfig(logging=_core_logging(), metrics=prometheus))
        except ValueError as error:  # the SDK's way of saying "address in use"
            log.error("metrics endpoint off: cannot serve %s: %s", bind_address, error)
        else:
            log.info("metrics at http://%s/metrics", bind_address)
            return served
    else:
        log.info("metrics endpoint off (no address configured)")
    return Runtime(telemetry=TelemetryConfig(logging=_core_logging()))


@dataclass(frozen=True)
class Tracing:
    """Tracing is on: the tracer provider and how each part joins the trace."""

    provider: TracerProvider

    def interceptors(self) -> list[Interceptor]:
        """For ``connect(interceptors=...)``: client spans, and workflow and activity
        spans in a worker using that client."""
        return [TracingInterceptor(self.provider.get_tracer("cancellation-orchestrator"))]

    def instrument_provider_client(self, client: httpx.AsyncClient) -> None:
        """Client spans for each HTTP call of a provider client, the URL without its query."""
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor.instrument_client(
            client, tracer_provider=self.provider, request_hook=_drop_query
        )

    def instrument_api(self, app: FastAPI) -> None:
        """A server span per API request; health checks are left out."""
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=self.provider, excluded_urls="healthz,readyz"
        )

    def shutdown(self) -> None:
        """Export what is still buffered; call before the process exits."""
        self.provider.shutdown()


async def _drop_query(span: Span, request: RequestInfo) -> None:
    """sTN lookups carry a phone number in the query: span URLs keep only the path."""
    raw = request.url
    if not isinstance(raw, httpx.URL):  # httpx < 0.20 hands a tuple
        scheme, host, port, target = raw
        raw = httpx.URL(scheme=scheme.decode(), host=host.decode(), port=port, path="/")
        raw = raw.copy_with(raw_path=target.split(b"?")[0])
    url = str(raw.copy_with(query=None, fragment=None))
    attributes = getattr(span, "attributes", None) or {}
    for key in ("http.url", "url.full"):
        if key in attributes:
            span.set_attribute(key, url)


def _exporter(settings: TelemetrySettings) -> SpanExporter:
    if settings.tracing_exporter == TracingExporter.CONSOLE:
        # The stdout of now (the exporter's default is the one at its import).
        return ConsoleSpanExporter(out=sys.stdout)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=settings.otlp_endpoint)


def start_tracing(settings: TelemetrySettings, service_name: str) -> Tracing | None:
    """Tracing as configured (``None`` when off): spans batched to OTLP over HTTP or
    to the console, under ``service.name`` = ``service_name``."""
    if settings.tracing_exporter == TracingExporter.NONE:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(_exporter(settings)))
    return Tracing(provider)


def tracing_interceptors(tracing: Tracing | None) -> list[Interceptor]:
    """``tracing``'s client interceptors, or none when tracing is off."""
    return tracing.interceptors() if tracing is not None else []
