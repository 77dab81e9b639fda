"""Airalo against its documented examples (``tests/contracts/airalo/*.json``).

(a) Our client (``activities.airalo``) parses every documented response and sends
    requests the docs describe (form-encoded token, JSON bodies, the documented
    list filters), against the documented base ``https://partners-api.airalo.com/v2/``.
(b) The sandbox answers the same calls with the documented shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.airalo import AiraloActivities, AiraloTokens
from activities.provider_http import json_http_client
from config.settings import AiraloSettings
from domain.airalo import (
    CancelFutureOrders,
    CreateFutureOrder,
    FutureOrder,
    ListFutureOrders,
    RejectionKind,
)
from domain.common import ErrorType
from sandbox.clock import ManualClock
from sandbox.settings import SandboxSettings
from sandbox.testing import SandboxAdmin, SandboxServer
from tests.contracts.docs import load, shape

DOCUMENTED_BASE = "https://partners-api.airalo.com/v2/"
START = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)


class DocumentedAiralo:
    """Answers each path with its documented example and records the requests."""

    def __init__(self, **answers: str) -> None:
        self.answers = {"/v2/token": "token", **answers}
        self.requests: list[httpx.Request] = []
        # Per path: documented body values replaced (e.g. another business code).
        self.changed: dict[str, dict[str, Any]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        example = load("airalo", self.answers[path])
        body = example.body
        if path in self.changed:
            body = {**body, **self.changed[path]}
        return httpx.Response(example.status, json=body)

    def sent(self, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == path]


async def run(fake: DocumentedAiralo, name: str, argument: Any, webhook: str | None = None) -> Any:
    settings = AiraloSettings(base_url=DOCUMENTED_BASE, client_id="id", webhook_url=webhook)
    transport = httpx.MockTransport(fake)
    async with json_http_client(settings.api_root, 5, transport=transport) as http:
        tokens = AiraloTokens.from_settings(http, settings)
        activities = AiraloActivities(http, tokens, settings.webhook_url)
        return await ActivityEnvironment().run(getattr(activities, name), argument)


# ---------------------------------------------------------------- (a) our client


async def test_token_request_is_the_documented_form_under_the_documented_base() -> None:
    example = load("airalo", "token")
    fake = DocumentedAiralo(**{"/v2/future-orders": "list_future_orders"})
    await run(fake, "list_future_orders", ListFutureOrders(statuses=["pending"]))
    sent = fake.sent("/v2/token")[0]
    assert str(sent.url) == "https://partners-api.airalo.com/v2/token"
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert set(parse_qs(sent.content.decode())) == set(example.request["form"])
    assert parse_qs(sent.content.decode())["grant_type"] == ["client_credentials"]
    listing = fake.sent("/v2/future-orders")[0]
    assert listing.headers["authorization"] == f"Bearer {example.body['data']['access_token']}"


async def test_listing_asks_for_every_documented_status_and_parses_the_items() -> None:
    example = load("airalo", "list_future_orders")
    fake = DocumentedAiralo(**{"/v2/future-orders": "list_future_orders"})
    listed = await run(fake, "list_future_orders", ListFutureOrders())
    calls = fake.sent("/v2/future-orders")
    assert [c.url.params["status"] for c in calls] == example.request["statuses"]
    for call in calls:
        assert set(call.url.params) <= set(example.request["parameters"])
    documented = example.body["data"][0]
    order = listed.orders[0]
    assert (order.request_id, order.status, order.quantity) == (
        documented["request_id"],
        documented["status"],
        documented["quantity"],
    )
    assert order.latest_cancellation_date == datetime(2025, 3, 9, 10, 0, tzinfo=UTC)


async def test_cancel_sends_the_documented_body_and_reads_the_documented_answers() -> None:
    example = load("airalo", "cancel_future_orders")
    ids = example.request["json"]["request_ids"]
    fake = DocumentedAiralo(**{"/v2/cancel-future-orders": "cancel_future_orders"})
    result = await run(fake, "cancel_future_orders", CancelFutureOrders(request_ids=ids))
    sent = fake.sent("/v2/cancel-future-orders")[0]
    assert json.loads(sent.content) == example.request["json"]
    for header in ("Accept", "Content-Type"):
        assert sent.headers[header] == example.request["headers"][header]
    assert result.accepted

    rejected = DocumentedAiralo(**{"/v2/cancel-future-orders": "cancel_future_orders_422"})
    result = await run(rejected, "cancel_future_orders", CancelFutureOrders(request_ids=ids))
    assert [(r.request_id, r.kind) for r in result.rejections] == [
        (ids[2], RejectionKind.ALREADY_PROCESSED)
    ]


async def test_create_sends_documented_parameters_with_the_webhook() -> None:
    example = load("airalo", "create_future_order")
    documented = example.request["json"]
    order = FutureOrder.from_airalo(
        {**documented, "request_id": "Q2FMVdpbIAFh0RVvtjKkya8a1", "status": "pending"}
    )
    fake = DocumentedAiralo(**{"/v2/future-orders": "create_future_order"})
    created = await run(
        fake, "create_future_order", CreateFutureOrder(order=order), documented["webhook_url"]
    )
    body = json.loads(fake.sent("/v2/future-orders")[0].content)
    assert set(body) <= set(example.request["parameters"])
    assert body == documented
    assert created.request_id == example.body["data"]["request_id"]
    assert created.latest_cancellation_date == datetime(2025, 3, 9, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("code", [13, 53, 11, 33, 34, 43])
async def test_documented_business_errors(code: int) -> None:
    example = load("airalo", "business_error")
    fake = DocumentedAiralo(**{"/v2/cancel-future-orders": "business_error"})
    fake.changed["/v2/cancel-future-orders"] = {"code": code}
    with pytest.raises(ApplicationError) as error:
        await run(fake, "cancel_future_orders", CancelFutureOrders(request_ids=["x" * 25]))
    assert f"{example.body['reason']} (code {code})" in error.value.message
    transient = code in example.response["transient_codes"]
    assert error.value.non_retryable is not transient
    expected = ErrorType.PROVIDER_UNAVAILABLE if transient else ErrorType.PROVIDER_REJECTED
    assert error.value.type == expected


# ---------------------------------------------------------------- (b) the sandbox


def indexless(value: Any) -> Any:
    """A shape with ``request_ids.N`` keys written ``request_ids.N`` whatever N is."""
    if isinstance(value, dict):
        return {re.sub(r"\.\d+$", ".N", key): indexless(item) for key, item in value.items()}
    return value


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxSettings(), clock=ManualClock(START)) as running:
        yield running


@pytest.fixture
def airalo(server: SandboxServer) -> Iterator[httpx.Client]:
    with SandboxAdmin(server.base_url) as admin:
        admin.reset()
    # The sandbox serves the documented ``/v2/...`` paths under its Airalo base.
    with httpx.Client(base_url=server.airalo_url, headers={"Accept": "application/json"}) as http:
        form = load("airalo", "token").request["form"]
        credentials = {
            **form,
            "client_id": "sandbox-airalo-client",
            "client_secret": "sandbox-airalo-secret",
        }
        token = http.post("/v2/token", data=credentials).json()["data"]["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        yield http


def test_sandbox_token_answer(server: SandboxServer) -> None:
    example = load("airalo", "token")
    form = {**example.request["form"], "client_id": "sandbox-airalo-client"}
    form["client_secret"] = "sandbox-airalo-secret"
    answer = httpx.post(server.airalo_url + "/v2/token", data=form)
    assert answer.status_code == 200
    assert shape(answer.json()) == shape(example.body)


def test_sandbox_create_answer(airalo: httpx.Client) -> None:
    example = load("airalo", "create_future_order")
    body = {**example.request["json"], "due_date": "2030-01-20 10:00"}
    answer = airalo.post("/v2/future-orders", json=body)
    assert answer.status_code == 200
    data = answer.json()["data"]
    # The documented keys; [assume] the sandbox also echoes quantity, package_id, description.
    assert set(example.body["data"]) <= set(data)
    assert len(data["request_id"]) == 25
    assert data["latest_cancellation_date"] == "2030-01-19 10:00"


def test_sandbox_list_answer(server: SandboxServer, airalo: httpx.Client) -> None:
    example = load("airalo", "list_future_orders")
    with SandboxAdmin(server.base_url) as admin:
        seeded = admin.airalo_seed_future_order(
            "pkg", START + timedelta(days=5), quantity=2, description="d", status="failed"
        )
    answer = airalo.get("/v2/future-orders", params=example.request["query"]).json()
    assert shape(answer) == shape(example.body)
    assert answer["data"][0]["request_id"] == seeded["request_id"]
    assert answer["data"][0]["status"] == "failed"
    assert airalo.get("/v2/future-orders").json()["data"] == []  # pending by default


def test_sandbox_cancel_answers(server: SandboxServer, airalo: httpx.Client) -> None:
    with SandboxAdmin(server.base_url) as admin:
        ids = [
            admin.airalo_seed_future_order("pkg", START + timedelta(days=3))["request_id"]
            for _ in range(2)
        ]
        processed = admin.airalo_seed_future_order(
            "pkg", START - timedelta(days=1), status="processed"
        )["request_id"]
    example = load("airalo", "cancel_future_orders")
    answer = airalo.post("/v2/cancel-future-orders", json={"request_ids": ids})
    assert (answer.status_code, answer.json()) == (example.status, example.body)

    documented = load("airalo", "cancel_future_orders_422")
    rejected = airalo.post("/v2/cancel-future-orders", json={"request_ids": ["a" * 25, processed]})
    assert rejected.status_code == documented.status
    assert indexless(shape(rejected.json())) == indexless(shape(documented.body))
    assert rejected.json()["meta"] == documented.body["meta"]
    message = rejected.json()["data"]["request_ids.1"]
    assert message == documented.body["data"]["request_ids.2"].replace(
        "OKjfHGS5qzRWzt74iKfm9YeVe", processed
    )


def test_sandbox_unauthorized_and_rate_limit_answers(server: SandboxServer) -> None:
    unauthorized = load("airalo", "unauthorized")
    answer = httpx.get(server.airalo_url + "/v2/future-orders")
    assert (answer.status_code, answer.json()) == (unauthorized.status, unauthorized.body)

    limited = load("airalo", "too_many_attempts")
    with SandboxAdmin(server.base_url) as admin:
        admin.add_fault(provider="airalo", path="/v2/token", mode="rate_limit", count=1)
        answer = httpx.post(server.airalo_url + "/v2/token", data={})
        admin.clear_faults()
    assert (answer.status_code, answer.json()) == (limited.status, limited.body)
    assert answer.headers["Retry-After"].isdigit()


def test_sandbox_business_error_knob_gives_the_documented_shape(
    server: SandboxServer, airalo: httpx.Client
) -> None:
    example = load("airalo", "business_error")
    with SandboxAdmin(server.base_url) as admin:
        admin.add_fault(
            provider="airalo",
            path="/v2/cancel-future-orders",
            mode="error",
            status=example.status,
            body=example.body,
            count=1,
        )
    answer = airalo.post("/v2/cancel-future-orders", json={"request_ids": ["a" * 25]})
    assert (answer.status_code, answer.json()) == (example.status, example.body)
