"""Tracing: one trace from the API request through the workflow into each provider call.

The production pieces, wired as ``python -m starter.api`` and ``python worker.py`` wire
them (``config.telemetry.Tracing``), share one in-memory exporter here: the API app
served by uvicorn over real HTTP, a worker on the test dev server whose provider
clients call the real sandbox. One line termination started by ``POST`` must leave
one trace holding the FastAPI server span, the SDK's workflow and activity spans and
the httpx client spans of the sTN calls, each call under its activity.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic import SecretStr
from temporalio.client import Client

from config.settings import ApiKey, ApiScope, ApiSettings, OrchestratorSettings
from config.telemetry import (
    TelemetrySettings,
    Tracing,
    TracingExporter,
    start_tracing,
    tracing_interceptors,
)
from sandbox.testing import SandboxAdmin
from starter.api.app import ApiTelemetry, create_app
from starter.api.gateway import TemporalGateway
from tests.api.conftest import bearer, free_port
from tests.conftest import TestSandbox, provider_settings_for
from tests.helpers import eventually
from tests.sandbox.receiver import WebhookReceiver
from worker import build_worker, provider_clients

TOKEN = secrets.token_urlsafe(24)


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """``app`` on a free port of this process (uvicorn), until the block ends."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    task = asyncio.create_task(server.serve())

    async def started() -> None:
        assert server.started or task.done()

    await eventually(started, within=15)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    """The names of ``span``'s parents, nearest first, as far as they were exported."""
    names = []
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        found = by_id[parent.span_id]
        names.append(found.name)
        parent = found.parent
    return names


def http_method(span: ReadableSpan) -> str:
    """The request method of an httpx client span (new or old semantic conventions)."""
    attributes = span.attributes or {}
    return str(attributes.get("http.request.method", attributes.get("http.method")))


# Wall clock ~6 s: sTN's 1 s processing delay, a lost response retried after 1 s.
@pytest.mark.own_sandbox  # a sandbox-wide fault: one lost sTN response
async def test_one_trace_links_api_request_workflow_activities_and_provider_calls(
    client: Client, sandbox: TestSandbox, sandbox_admin: SandboxAdmin, task_queue: str
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = Tracing(provider)
    config = client.config()
    config["interceptors"] = tracing.interceptors()
    traced = Client(**config)

    async def connect() -> Client:
        return traced

    app = create_app(
        ApiSettings(
            keys=[
                ApiKey(
                    name="crm",
                    token=SecretStr(TOKEN),
                    scopes=frozenset({ApiScope.SAGAS_WRITE, ApiScope.SAGAS_READ}),
                )
            ]
        ),
        OrchestratorSettings(task_queue=task_queue),
        TemporalGateway(10, connect),
        telemetry=ApiTelemetry(tracing=tracing),
    )
    # The retried submit looks its activation up by phone number (in the query).
    sandbox_admin.add_fault(
        provider="stn",
        method="POST",
        path="/api/TerminateSubscription",
        mode="drop_response",
        count=1,
    )
    digits = str(uuid.uuid4().int)[:8]

    async with (
        provider_clients(provider_settings_for(sandbox), tracing=tracing) as clients,
        build_worker(traced, task_queue, clients),
        serving(app) as base_url,
        httpx.AsyncClient(base_url=base_url, headers=bearer(TOKEN)) as http,
    ):
        answer = await http.post("/v1/line-terminations", json={"phoneNumber": f"06{digits}"})
        assert answer.status_code == 202, answer.text
        workflow_id = answer.json()["workflowId"]
        final = await client.get_workflow_handle(workflow_id).result()
        assert final["phase"] == "COMPLETED"

    async def traced_request() -> ReadableSpan:
        servers = [
            s
            for s in exporter.get_finished_spans()
            if s.kind == SpanKind.SERVER and s.name == "POST /v1/line-terminations"
        ]
        assert len(servers) == 1, [s.name for s in exporter.get_finished_spans()]
        return servers[0]

    request = await eventually(traced_request, within=10)
    trace_id = request.context.trace_id
    spans = [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]
    by_id = {s.context.span_id: s for s in spans}
    names = {s.name for s in spans}
    assert {
        "StartWorkflow:LineTermination",
        "RunWorkflow:LineTermination",
        "StartActivity:stn.submit_termination",
        "RunActivity:stn.submit_termination",
        "StartActivity:stn.await_activation_final",
        "RunActivity:stn.await_activation_final",
    } <= names, names
    assert "POST /v1/line-terminations" in ancestors(
        next(s for s in spans if s.name == "StartWorkflow:LineTermination"), by_id
    )

    calls = [
        s
        for s in spans
        if s.kind == SpanKind.CLIENT
        and s.instrumentation_scope is not None
        and s.instrumentation_scope.name == "opentelemetry.instrumentation.httpx"
    ]
    assert {http_method(s) for s in calls} == {"POST", "GET"}, [s.name for s in calls]
    # Submit (lost), its retry's lookup by phone number, and the polls: each call
    # sits under the activity that made it, the activity under the workflow's start
    # (the SDK's interceptor parents workflow-side spans there), that under the request.
    assert len(calls) >= 3
    for call in calls:
        chain = ancestors(call, by_id)
        assert chain[0].startswith("RunActivity:stn."), chain
        assert chain[1].startswith("StartActivity:stn."), chain
        assert chain[-2:] == ["StartWorkflow:LineTermination", request.name], chain
    run = next(s for s in spans if s.name == "RunWorkflow:LineTermination")
    assert ancestors(run, by_id) == ["StartWorkflow:LineTermination", request.name]
    assert all(digits not in str(dict(s.attributes or {})) for s in spans)


# -- the exporters --------------------------------------------------------------------------


def test_tracing_is_off_by_default() -> None:
    tracing = start_tracing(TelemetrySettings(), "cancellation-worker")
    assert tracing is None and tracing_interceptors(tracing) == []


def test_otlp_over_http_sends_the_spans_to_the_configured_endpoint() -> None:
    with WebhookReceiver() as collector:
        settings = TelemetrySettings(
            tracing_exporter=TracingExporter.OTLP, otlp_endpoint=f"{collector.url}/v1/traces"
        )
        tracing = start_tracing(settings, "cancellation-worker")
        assert tracing is not None
        assert [type(i).__name__ for i in tracing.interceptors()] == ["TracingInterceptor"]
        with tracing.provider.get_tracer("test").start_as_current_span("RunActivity:stn.x"):
            pass
        tracing.shutdown()  # flushes the batch
        (sent,) = collector.wait_for(1, "/v1/traces")

    assert sent.headers["content-type"] == "application/x-protobuf"
    export = ExportTraceServiceRequest.FromString(sent.body)
    (resource,) = export.resource_spans
    service = {a.key: a.value.string_value for a in resource.resource.attributes}
    assert service["service.name"] == "cancellation-worker"
    assert [s.name for scope in resource.scope_spans for s in scope.spans] == ["RunActivity:stn.x"]


def test_console_prints_the_spans(capsys: pytest.CaptureFixture[str]) -> None:
    settings = TelemetrySettings(tracing_exporter=TracingExporter.CONSOLE)
    tracing = start_tracing(settings, "cancellation-api")
    assert tracing is not None
    with tracing.provider.get_tracer("test").start_as_current_span("POST /v1/customer-churns"):
        pass
    tracing.shutdown()

    printed = capsys.readouterr().out
    assert '"name": "POST /v1/customer-churns"' in printed
    assert '"service.name": "cancellation-api"' in printed
