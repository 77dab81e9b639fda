"""Prometheus metrics: the worker's and the API's endpoints, scraped over real HTTP.

The end-to-end test runs the production processes (``python worker.py`` and
``python -m starter.api``) against the test dev server and sandbox, drives five
sagas of all four kinds through the API to every final phase and NEEDS_ATTENTION,
and reads both ``/metrics`` endpoints. Unit tests beside it pin the label rules
(route templates, outcomes) that keep ids and phone numbers out of labels.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowUpdateStage
from temporalio.common import MetricMeter
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_HISTOGRAM,
    MetricBuffer,
    Runtime,
    TelemetryConfig,
)
from temporalio.testing import ActivityEnvironment

from activities.provider_http import json_http_client, outcome_of, route_template
from config.logs import LogFormat
from config.settings import ApiSettings, OrchestratorSettings, WorkerSettings
from config.telemetry import TelemetrySettings, TracingExporter, runtime
from domain.airalo import AiraloActivity, FutureOrderCancellationRequest
from domain.common import Provider, RevokeRequest, SagaKind
from domain.lanes import lane_queue
from domain.outcomes import JeopardyCause
from domain.stn import StnActivity, TerminationRequest
from sandbox.testing import SandboxAdmin
from starter import sagas
from starter.api import airalo_signature
from starter.api.app import (
    attention_query,
    create_app,
    jeopardy_query,
    kind_of,
    notice_outcome,
    route_of,
)
from starter.api.routes.common import matchable
from tests.api.conftest import (
    ADMIN_TOKEN,
    AIRALO_WEBHOOK_SECRET,
    REBILLY_WEBHOOK_PASSWORD,
    REBILLY_WEBHOOK_USERNAME,
    bearer,
    free_port,
    start_api,
)
from tests.conftest import TestSandbox
from tests.fast.fakes import FakeProviders, Gate, reject
from tests.helpers import eventually, wait_for_phase
from tests.worker_process import worker_process
from worker import ProviderClients, build_worker

ROOT = Path(__file__).parent.parent
STARTUP_SECONDS = 30.0


# -- reading /metrics ---------------------------------------------------------------------

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def parse(text: str) -> list[Sample]:
    """The samples of a Prometheus text exposition (comments skipped)."""
    samples = []
    for line in text.splitlines():
        found = _SAMPLE.match(line)
        if found and not line.startswith("#"):
            labels = dict(_LABEL.findall(found["labels"] or ""))
            samples.append(Sample(found["name"], labels, float(found["value"])))
    return samples


def total(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of ``name`` over the samples carrying ``labels``."""
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def scrape(address: str) -> str:
    return httpx.get(f"http://{address}/metrics", timeout=5.0).raise_for_status().text


# -- the worker as it runs ----------------------------------------------------------------


# -- end to end -----------------------------------------------------------------------------


def in_future(**delta: float) -> datetime:
    return (datetime.now(UTC) + timedelta(**delta)).replace(microsecond=0)


def in_days(n: float) -> str:
    return in_future(days=n).isoformat()


def request_id(uid: str, n: int) -> str:
    return f"{uid}-{n}".ljust(25, "x")


# Wall clock ~25 s: two processes start, five sagas run (sTN's 1 s processing delay,
# a lost response retried after 1 s), the API's gauge refreshes every 0.5 s.
@pytest.mark.own_sandbox  # a sandbox-wide fault: one lost sTN response
async def test_worker_and_api_expose_saga_provider_and_request_metrics(
    client: Client, sandbox: TestSandbox, sandbox_admin: SandboxAdmin, task_queue: str, uid: str
) -> None:
    worker_address, api_address = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    phone = "06" + str(uuid.uuid4().int)[:8]
    sandbox_admin.add_fault(
        provider="stn",
        method="POST",
        path="/api/TerminateSubscription",
        mode="drop_response",
        count=1,
    )
    sandbox_admin.stn_set_outcome(f"SUB-{uid}-F", "ERROR", "Subscription is blocked")
    sandbox_admin.stn_set_outcome(f"SUB-{uid}-C", cancel_outcome="ERROR", cancel_message="Locked")
    due = datetime.now(UTC) + timedelta(days=6)
    esim = sandbox_admin.airalo_seed_future_order(f"pkg-{uid}", due)["request_id"]

    with worker_process(
        client, sandbox, task_queue, CANCEL_METRICS_WORKER_ADDRESS=worker_address
    ) as worker:
        api = start_api(
            TEMPORAL_ADDRESS=client.service_client.config.target_host,
            TEMPORAL_NAMESPACE=client.namespace,
            CANCEL_TASK_QUEUE=task_queue,
            CANCEL_METRICS_API_ADDRESS=api_address,
            CANCEL_ATTENTION_REFRESH_SECONDS="0.5",
            CANCEL_API_AIRALO_WEBHOOK_SECRET=AIRALO_WEBHOOK_SECRET,
            CANCEL_API_REBILLY_WEBHOOK_USERNAME=REBILLY_WEBHOOK_USERNAME,
            CANCEL_API_REBILLY_WEBHOOK_PASSWORD=REBILLY_WEBHOOK_PASSWORD,
        )
        try:
            async with httpx.AsyncClient(
                base_url=api.base_url, headers=bearer(ADMIN_TOKEN), timeout=30.0
            ) as http:
                await _drive_sagas(http, client, api_address, uid, phone, esim)
                api_text = scrape(api_address)
        finally:
            api.stop()
        worker_text = scrape(worker_address)
        assert '"level": "ERROR"' not in worker.output()

    worker_metrics = parse(worker_text)
    by_kind = {
        ("LINE_TERMINATION", "stn"): {"started": 2, "completed": 1, "failed": 1},
        ("ORDER_CANCELLATION", "rebilly"): {"started": 1, "revoked": 1},
        ("FUTURE_ORDER_CANCELLATION", "airalo"): {"started": 1, "completed": 1},
        ("CUSTOMER_CHURN", "stn+rebilly"): {"started": 1, "compensated": 1},
    }
    for (kind, provider), expected in by_kind.items():
        for event in ("started", "completed", "failed", "compensated", "revoked"):
            counted = total(
                worker_metrics, f"cancel_sagas_{event}_total", kind=kind, provider=provider
            )
            assert counted == expected.get(event, 0), (kind, event, counted)
    churn = {"kind": "CUSTOMER_CHURN", "provider": "stn+rebilly"}
    assert total(worker_metrics, "cancel_sagas_needing_attention_total", **churn) == 1
    assert total(worker_metrics, "cancel_compensation_failures_total", **churn) == 1
    assert total(worker_metrics, "cancel_compensation_failures_total") == 1

    calls = "cancel_provider_call_duration_seconds"
    for provider, route, status in [
        ("stn", "POST /api/TerminateSubscription", "200"),
        ("stn", "POST /api/TerminateSubscription", "504"),  # the lost response
        ("stn", "GET /api/QueryActivation", "200"),
        ("stn", "POST /api/CancelTerminateSubscription", "200"),
        ("rebilly", "PUT /order-cancellations/{id}", "201"),
        ("rebilly", "DELETE /order-cancellations/{id}", "204"),
        ("airalo", "POST /v2/token", "200"),
        ("airalo", "GET /v2/future-orders", "200"),
        ("airalo", "POST /v2/cancel-future-orders", "200"),
    ]:
        labels = {"provider": provider, "route": route, "status": status}
        count = total(worker_metrics, f"{calls}_count", **labels)
        seconds = total(worker_metrics, f"{calls}_sum", **labels)
        assert count >= 1, (labels, sorted({s.labels.get("route", "") for s in worker_metrics}))
        assert 0 < seconds < 15 * count, (labels, seconds)
    assert total(worker_metrics, f"{calls}_count", status="504", outcome="unavailable") == 1
    routes = {s.labels["route"] for s in worker_metrics if s.name == f"{calls}_count"}
    assert all(re.fullmatch(r"[A-Z]+ (/[A-Za-z_-]+|/v2|/\{id\})+", r) for r in routes), routes
    # The SDK's own metrics on the same endpoint.
    assert total(worker_metrics, "temporal_workflow_completed", task_queue=task_queue) >= 4
    # The lost response: sTN's call failed once, on sTN's lane.
    stn_lane = lane_queue(task_queue, Provider.STN)
    assert total(worker_metrics, "temporal_activity_execution_failed", task_queue=stn_lane) >= 1
    assert phone[2:] not in worker_text and phone[2:] not in api_text

    api_metrics = parse(api_text)
    for kind in SagaKind:
        assert total(api_metrics, "cancel_api_sagas_started_total", kind=kind.value) == (
            2 if kind == SagaKind.LINE_TERMINATION else 1
        )
    requests = "cancel_api_requests_total"
    assert total(api_metrics, requests, route="POST /v1/line-terminations", status="202") == 2
    assert total(api_metrics, requests, route="POST /v1/sagas/{workflow_id}/revoke") == 2
    assert total(api_metrics, requests, route="POST /v1/webhooks/airalo", status="401") == 1
    assert total(api_metrics, requests, route="unmatched", status="404") == 1
    assert not any(uid in s.labels.get("route", "") for s in api_metrics)
    notices = "cancel_api_webhook_notices_total"
    assert total(api_metrics, notices, provider="airalo", outcome="unauthenticated") == 1
    assert total(api_metrics, notices, provider="airalo", outcome="unrouted") == 1
    # Each provider lane, as Temporal reports it (none is limited in this test).
    for provider in Provider:
        lane = {"lane": provider.value}
        assert any(
            s.name == "cancel_lane_backlog" and s.labels.get("lane") == provider.value
            for s in api_metrics
        )
        assert total(api_metrics, "cancel_lane_limit_per_second", **lane) == 0
        within = {"provider": provider.value, "within": "24h"}
        assert any(
            s.name == "cancel_sagas_due" and all(s.labels.get(k) == v for k, v in within.items())
            for s in api_metrics
        )


async def _drive_sagas(
    http: httpx.AsyncClient, client: Client, api_address: str, uid: str, phone: str, esim: str
) -> None:
    """One saga per final phase, and a churn through NEEDS_ATTENTION, all via the API."""

    async def started(path: str, body: dict[str, Any]) -> str:
        answer = await http.post(path, json=body)
        assert answer.status_code == 202, answer.text
        workflow_id: str = answer.json()["workflowId"]
        return workflow_id

    async def final(workflow_id: str) -> str:
        phase: str = (await client.get_workflow_handle(workflow_id).result())["phase"]
        return phase

    by_phone = await started("/v1/line-terminations", {"phoneNumber": phone})
    failing = await started("/v1/line-terminations", {"subscriptionId": f"SUB-{uid}-F"})
    esims = await started("/v1/future-order-cancellations", {"requestIds": [esim]})
    draft = await started("/v1/order-cancellations", {"orderId": f"ORD-{uid}-D", "draft": True})
    churn = await started(
        "/v1/customer-churns",
        {
            "customerId": f"C-{uid}",
            "wishDate": in_days(3),
            "stn": {"subscriptionId": f"SUB-{uid}-C"},
            "rebilly": {"orderId": f"ORD-{uid}-C"},
        },
    )

    async def waiting(workflow_id: str) -> None:
        state = (await http.get(f"/v1/sagas/{workflow_id}")).json()
        assert state["phase"] == "WAITING", state["phase"]

    await eventually(lambda: waiting(draft))
    await eventually(lambda: waiting(churn))
    revoked = await http.post(f"/v1/sagas/{draft}/revoke", json={"reason": "kept"})
    assert revoked.json()["phase"] == "REVOKED", revoked.text
    stuck = await http.post(f"/v1/sagas/{churn}/revoke", json={"reason": "stays"})
    assert stuck.json()["phase"] == "NEEDS_ATTENTION", stuck.text

    gauge = "cancel_sagas_needing_attention"
    churns = attention_query(SagaKind.CUSTOMER_CHURN)

    async def gauge_is_visibility(ours: int) -> None:
        """The API's gauge agrees with visibility, which shows ``ours`` of our churn
        (other tests' sagas may count too)."""
        ours_visible = await client.count_workflows(f'{churns} AND WorkflowId = "{churn}"')
        assert ours_visible.count == ours
        shown = total(parse(scrape(api_address)), gauge, kind=SagaKind.CUSTOMER_CHURN.value)
        assert shown == (await client.count_workflows(churns)).count >= ours

    await eventually(lambda: gauge_is_visibility(1))
    resolved = await http.post(
        f"/v1/sagas/{churn}/resolve", json={"action": "mark_handled", "note": "called"}
    )
    assert resolved.json()["phase"] == "COMPENSATED", resolved.text
    await eventually(lambda: gauge_is_visibility(0))

    async def jeopardy_is_visibility() -> None:
        """Every jeopardy cause has its gauge, equal to visibility's count."""
        scraped = parse(scrape(api_address))
        for cause in JeopardyCause:
            assert any(
                s.name == "cancel_sagas_in_jeopardy" and s.labels.get("cause") == cause
                for s in scraped
            ), cause
            shown = total(scraped, "cancel_sagas_in_jeopardy", cause=cause.value)
            assert shown == (await client.count_workflows(jeopardy_query(cause))).count

    await eventually(jeopardy_is_visibility)

    assert [await final(w) for w in (by_phone, failing, esims)] == [
        "COMPLETED",
        "FAILED",
        "COMPLETED",
    ]
    forged = await http.post("/v1/webhooks/airalo", content=b'{"request_id": "x"}')
    assert forged.status_code == 401
    notice = {"request_id": request_id(uid, 9)}
    signed = await http.post(
        "/v1/webhooks/airalo",
        json=notice,
        headers={airalo_signature.HEADER: airalo_signature.sign(notice, AIRALO_WEBHOOK_SECRET)},
    )
    assert signed.status_code == 200 and signed.json()["routedTo"] == []
    assert (await http.get(f"/v1/nothing-here/{uid}")).status_code == 404


# -- the rules that keep labels small and free of personal data ----------------------------


@pytest.mark.parametrize(
    ("method", "path", "base", "route"),
    [
        (
            "put",
            "/org/order-cancellations/oc-3fa1b2c3d4e5f6a7b8c9d0e1-2",
            "/org/",
            "PUT /order-cancellations/{id}",
        ),
        ("GET", "/stn/api/QueryActivation", "/stn", "GET /api/QueryActivation"),
        ("POST", "/airalo/v2/cancel-future-orders", "/airalo/", "POST /v2/cancel-future-orders"),
        ("GET", "/v2/future-orders/0612345678", "", "GET /v2/future-orders/{id}"),
        ("GET", "/api/lines/06-12345678/x", "/", "GET /api/lines/{id}/x"),
        ("GET", "/organizations/org-1/x", "/rebilly", "GET /organizations/{id}/x"),
    ],
)
def test_route_templates_keep_words_and_hide_ids(
    method: str, path: str, base: str, route: str
) -> None:
    assert route_template(method, path, base) == route


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "ok"),
        (204, "ok"),
        (404, "rejected"),
        (422, "rejected"),
        (429, "throttled"),
        (408, "unavailable"),
        (503, "unavailable"),
    ],
)
def test_outcomes_follow_how_calls_are_retried(status: int, outcome: str) -> None:
    assert outcome_of(status) == outcome


def _recorded(buffer: MetricBuffer) -> list[dict[str, Any]]:
    return [
        {**dict(update.attributes), "value": update.value}
        for update in buffer.retrieve_updates()
        if update.metric.name == "cancel_provider_call_duration_seconds"
        and update.metric.kind == BUFFERED_METRIC_KIND_HISTOGRAM
    ]


async def test_each_call_in_an_activity_is_measured_with_its_outcome() -> None:
    """Statuses, timeouts and transport errors each get a sample; the query (here a
    phone number) never reaches the route."""
    buffer = MetricBuffer(100)
    runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer))

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/slow"):
            raise httpx.ReadTimeout("timed out", request=request)
        if request.url.path.endswith("/down"):
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(429 if "busy" in request.url.path else 200, json={})

    async with json_http_client(
        "https://stn.example/stn", 5, transport=httpx.MockTransport(answer)
    ) as http:

        @activity.defn
        async def calls() -> None:
            await http.get("/api/QueryActivation", params={"phoneNumber": "06-12345678"})
            await http.post("/api/busy")
            for path in ("/api/slow", "/api/down"):
                with pytest.raises(httpx.HTTPError):
                    await http.get(path)

        env = ActivityEnvironment()
        env.info = dataclasses.replace(env.info, activity_type="stn.get_activation")
        env.metric_meter = runtime.metric_meter
        await env.run(calls)
        await http.get("/api/QueryActivation")  # outside an activity: not measured

    recorded = _recorded(buffer)
    assert [(r["route"], r["status"], r["outcome"]) for r in recorded] == [
        ("GET /api/QueryActivation", "200", "ok"),
        ("POST /api/busy", "429", "throttled"),
        ("GET /api/slow", "timeout", "unavailable"),
        ("GET /api/down", "error", "unavailable"),
    ]
    assert {r["provider"] for r in recorded} == {"stn"}
    assert all(0 <= r["value"] < 5 for r in recorded)


def test_api_routes_are_templates_and_unknown_paths_one_label() -> None:
    routes = matchable(create_app(ApiSettings()).routes)

    def route(method: str, path: str) -> str:
        return route_of({"type": "http", "method": method, "path": path, "root_path": ""}, routes)

    assert route("POST", "/v1/sagas/terminate-phone-abc123/revoke") == (
        "POST /v1/sagas/{workflow_id}/revoke"
    )
    assert route("POST", "/v1/customer-churns") == "POST /v1/customer-churns"
    # A workflow id may hold a "/" (it holds what the caller sent): still the template.
    assert route("GET", "/v1/sagas/terminate-a/b") == "GET /v1/sagas/{workflow_id}"
    assert route("GET", "/v1/elsewhere/06-12345678") == "unmatched"


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, b'{"routedTo": ["cancel-future-orders-x"]}', "routed"),
        (200, b'{"routedTo": []}', "unrouted"),
        (200, b"not json", "unrouted"),
        (401, b"", "unauthenticated"),
        (503, b"", "unconfigured"),
        (400, b"", "invalid"),
        (500, b"", "error"),
    ],
)
def test_webhook_outcomes(status: int, body: bytes, outcome: str) -> None:
    assert notice_outcome(status, body) == outcome


def test_workflow_types_are_counted_by_saga_kind() -> None:
    assert [kind_of(t) for t in ("LineTermination", "CustomerChurn", "Other")] == [
        "LINE_TERMINATION",
        "CUSTOMER_CHURN",
        "Other",
    ]
    query = attention_query(SagaKind.CUSTOMER_CHURN)
    assert 'CancellationStatus = "NEEDS_ATTENTION"' in query
    assert 'CancellationKind = "CUSTOMER_CHURN"' in query and 'ExecutionStatus = "Running"' in query


# -- the endpoint itself -------------------------------------------------------------------


def test_a_taken_metrics_port_is_logged_and_the_process_runs_without_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        with caplog.at_level(logging.ERROR, logger="config.telemetry"):
            without = runtime(address)

    assert without.metric_meter is MetricMeter.noop
    assert f"metrics endpoint off: cannot serve {address}" in caplog.text
    assert runtime("").metric_meter is MetricMeter.noop


def test_telemetry_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANCEL_LOG_FORMAT", "pretty")
    monkeypatch.setenv("CANCEL_LOG_LEVEL", "debug")
    monkeypatch.setenv("CANCEL_METRICS_WORKER_ADDRESS", "")
    monkeypatch.setenv("CANCEL_METRICS_API_ADDRESS", "0.0.0.0:9100")
    monkeypatch.setenv("CANCEL_TRACING_EXPORTER", "otlp")

    settings = TelemetrySettings()

    assert (settings.log_format, settings.log_level) == (LogFormat.PRETTY, "DEBUG")
    assert (settings.metrics_worker_address, settings.metrics_api_address) == ("", "0.0.0.0:9100")
    assert settings.tracing_exporter == TracingExporter.OTLP and settings.otlp_endpoint is None
    assert TelemetrySettings(_env_file=None).attention_refresh_seconds == 30.0


# -- saga counters: counted once, whatever replays ------------------------------------------


class Counted:
    """The counter updates a MetricBuffer runtime received (drained as they come)."""

    def __init__(self, buffer: MetricBuffer) -> None:
        self._buffer = buffer
        self._updates: list[Any] = []

    def __call__(self, name: str, **labels: str) -> int:
        self._updates += self._buffer.retrieve_updates()
        return sum(
            int(u.value)
            for u in self._updates
            if u.metric.name == name and all(u.attributes.get(k) == v for k, v in labels.items())
        )


@contextlib.asynccontextmanager
async def replaying_worker(
    client: Client, task_queue: str, fakes: FakeProviders
) -> AsyncIterator[Counted]:
    """The production workflows with faked activities, on a client whose runtime buffers
    metrics, with no workflow cache: every workflow task replays the whole history first."""
    buffer = MetricBuffer(10_000)
    buffered = await Client.connect(
        client.service_client.config.target_host,
        namespace=client.namespace,
        data_converter=client.data_converter,
        runtime=Runtime(telemetry=TelemetryConfig(metrics=buffer)),
    )
    clients = ProviderClients.of(fakes.activities())
    async with build_worker(buffered, task_queue, clients, WorkerSettings(max_cached_workflows=0)):
        yield Counted(buffer)


async def retried_tasks(client: Client, workflow_id: str) -> int:
    """Workflow tasks that failed and ran again (e.g. ``UnhandledCommand``: an event
    arrived while the saga completed). Code that ran in such a task runs twice, and
    so may count twice: the saga counters are at least once, exactly once otherwise."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return sum(
        1
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    )


async def test_a_compensation_that_cannot_undo_counts_one_failure_despite_replays(
    client: Client, settings: OrchestratorSettings, task_queue: str, uid: str
) -> None:
    fakes = FakeProviders()
    line = {"kind": "LINE_TERMINATION", "provider": "stn"}
    async with replaying_worker(client, task_queue, fakes) as counted:
        request = TerminationRequest(subscription_id=f"SUB-{uid}", wish_date=in_future(days=3))
        started = await sagas.start(client, SagaKind.LINE_TERMINATION, request, settings)
        await wait_for_phase(client, started.workflow_id, "WAITING")
        fakes.on(StnActivity.CANCEL_TERMINATION, reject("Line is locked"))

        await sagas.cancel(client, started.workflow_id)
        final = await wait_for_phase(client, started.workflow_id, "FAILED")

        assert "could not undo" in final["lastError"]
        # Once, despite every task replaying (no cache); a retried task may add one.
        once = range(1, 2 + await retried_tasks(client, started.workflow_id))
        assert counted("cancel_sagas_started_total", **line) in once
        assert counted("cancel_sagas_failed_total", **line) in once
        assert counted("cancel_compensation_failures_total", **line) in once
        assert counted("cancel_sagas_revoked_total") == counted("cancel_sagas_completed_total") == 0


async def test_an_order_not_recreated_by_a_revoke_is_a_compensation_failure(
    client: Client, settings: OrchestratorSettings, task_queue: str
) -> None:
    fakes = FakeProviders()
    esims = {"kind": "FUTURE_ORDER_CANCELLATION", "provider": "airalo"}
    order = fakes.add_future_order(in_future(days=3))
    in_flight = Gate()
    fakes.on(
        AiraloActivity.CANCEL_FUTURE_ORDERS,
        in_flight.hold(fakes.default(AiraloActivity.CANCEL_FUTURE_ORDERS)),
    )
    fakes.on(AiraloActivity.CREATE_FUTURE_ORDER, reject("due_date must be two days ahead"))
    async with replaying_worker(client, task_queue, fakes) as counted:
        started = await sagas.start(
            client,
            SagaKind.FUTURE_ORDER_CANCELLATION,
            FutureOrderCancellationRequest(request_ids=[order]),
            settings,
        )
        await in_flight.entered.wait()
        update = await client.get_workflow_handle(started.workflow_id).start_update(
            "revoke", RevokeRequest(), wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )
        in_flight.open()
        revoked: dict[str, Any] = await update.result()

        assert revoked["phase"] == "REVOKED" and "could not be re-created" in revoked["lastError"]
        once = range(1, 2 + await retried_tasks(client, started.workflow_id))
        assert counted("cancel_sagas_started_total", **esims) in once
        assert counted("cancel_sagas_revoked_total", **esims) in once
        assert counted("cancel_compensation_failures_total", **esims) in once
        assert counted("cancel_sagas_completed_total") == counted("cancel_sagas_failed_total") == 0
