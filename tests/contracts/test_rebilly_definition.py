"""Rebilly's own OpenAPI definition, held against our client and our sandbox over real HTTP.

The schemas are Rebilly's, copied with their source (``fixtures/rebilly/README.md``):
every request our activities send and every answer the sandbox gives them (successes and
each documented refusal) must fit the operation's definition: documented status, media
type, body schema (formats included), no read-only field sent and no write-only field
answered, documented headers (``Location``, ``X-RateLimit-Limit``/``-Remaining``,
``X-RateLimit-Retry-After``) present and of their type. The last test shows the client
reading ``X-RateLimit-Remaining`` and slowing down before the sandbox's 429.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.provider_http import ProviderClient
from activities.rate_pacing import RateLimitPacer
from activities.rebilly import RebillyActivities, rebilly_http_client
from config.settings import RebillySettings
from domain.rebilly import (
    CancellationRef,
    OrderCancellationRequest,
    PutCancellation,
    ReactivateOrder,
    RebillyStatus,
)
from sandbox.settings import SandboxSettings
from sandbox.testing import SandboxAdmin, SandboxServer
from tests.contracts.openapi_definition import (
    Operation,
    marked,
    operation,
    request_problems,
    response_problems,
    schema_errors,
)
from tests.contracts.rebilly_requests import every_settable_field

CANCELLATION = "openapi/paths/order-cancellations@{id}.yaml"
REACTIVATIONS = "openapi/paths/order-reactivations.yaml"
OPERATIONS = {
    ("GET", "cancellation"): operation("rebilly", CANCELLATION, "/order-cancellations/{id}", "get"),
    ("PUT", "cancellation"): operation("rebilly", CANCELLATION, "/order-cancellations/{id}", "put"),
    ("DELETE", "cancellation"): operation(
        "rebilly", CANCELLATION, "/order-cancellations/{id}", "delete"
    ),
    ("POST", "reactivations"): operation("rebilly", REACTIVATIONS, "/order-reactivations", "post"),
}
_CANCELLATION_PATH = re.compile(r"/order-cancellations/(?P<id>[^/]+)$")
API_KEY = "sk_definition_test"


@dataclass(frozen=True)
class Exchange:
    request: httpx.Request
    response: httpx.Response

    def operation(self) -> tuple[Operation, str | None]:
        """The documented operation this exchange is, and its ``{id}``."""
        path = self.request.url.path
        found = _CANCELLATION_PATH.search(path)
        if found is not None:
            return OPERATIONS[(self.request.method, "cancellation")], found["id"]
        assert path.endswith("/order-reactivations"), path
        return OPERATIONS[(self.request.method, "reactivations")], None


class Recording(httpx.AsyncBaseTransport):
    """Real HTTP, every request and its answer kept."""

    def __init__(self) -> None:
        self._http = httpx.AsyncHTTPTransport()
        self.exchanges: list[Exchange] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._http.handle_async_request(request)
        await response.aread()
        self.exchanges.append(Exchange(request, response))
        return response

    async def aclose(self) -> None:
        await self._http.aclose()


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    settings = SandboxSettings(rebilly_api_key=API_KEY, state_file=None)
    with SandboxServer(settings) as running:
        yield running


@pytest.fixture
def admin(server: SandboxServer) -> Iterator[SandboxAdmin]:
    with SandboxAdmin(server.base_url) as client:
        client.reset()
        client.clear_faults()
        yield client
        client.clear_faults()


def settings_for(server: SandboxServer, **changes: Any) -> RebillySettings:
    return RebillySettings(base_url=server.rebilly_url, api_key=API_KEY, **changes)


ITEM = {"type": "debit", "unitPriceAmount": 49.95, "unitPriceCurrency": "EUR", "quantity": 1}


def plain(order_id: str, **fields: Any) -> OrderCancellationRequest:
    """A request for ``order_id`` with only ``fields`` set."""
    return OrderCancellationRequest.model_validate({"orderId": order_id, **fields})


def test_the_definition_catches_what_rebilly_would_refuse() -> None:
    schema = OPERATIONS[("PUT", "cancellation")].request_schema()
    item = {**ITEM, "description": "d" * 1001, "createdTime": "2030-01-01T00:00:00Z"}
    body = {"id": "x", "status": "gone", "lineItems": [item], "churnTime": "tomorrow"}

    assert marked(schema, body, "readOnly") == ["id", "lineItems.0.createdTime"]
    assert [error.split(":")[0] for error in schema_errors(schema, body)] == [
        "body",  # orderId is required
        "churnTime",  # not a date-time
        "lineItems.0.description",  # longer than 1000
        "status",
    ]
    assert OPERATIONS[("PUT", "cancellation")].path_parameter("id")["maxLength"] == 50


async def refused(call: Any, argument: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(call, argument)
    return failed.value


async def test_our_requests_and_the_sandboxs_answers_fit_rebillys_definition(
    server: SandboxServer, admin: SandboxAdmin
) -> None:
    recording = Recording()
    async with rebilly_http_client(settings_for(server), transport=recording) as http:
        rebilly = RebillyActivities(http)
        env = ActivityEnvironment()

        def put(cid: str, request: OrderCancellationRequest, status: RebillyStatus) -> Any:
            return env.run(
                rebilly.put_cancellation,
                PutCancellation(cancellation_id=cid, body=request.body(status)),
            )

        # A draft, confirmed in place; read; reactivated (GET, POST, GET).
        await put("oc-def-1", every_settable_field("ord-1"), RebillyStatus.DRAFT)
        await put("oc-def-1", every_settable_field("ord-1"), RebillyStatus.CONFIRMED)
        await env.run(rebilly.find_cancellation, CancellationRef(cancellation_id="oc-def-1"))
        await env.run(
            rebilly.reactivate_order,
            ReactivateOrder(cancellation_id="oc-def-1", order_id="ord-1", description="stays"),
        )
        # Unknown id: 404. A draft deleted: 204; a confirmed one refused: 409.
        await env.run(rebilly.find_cancellation, CancellationRef(cancellation_id="oc-none"))
        await put("oc-def-2", plain("ord-2"), RebillyStatus.DRAFT)
        await env.run(rebilly.delete_draft, CancellationRef(cancellation_id="oc-def-2"))
        now = plain("ord-3", churnTimePolicy="now")
        await put("oc-def-3", now, RebillyStatus.CONFIRMED)
        conflict = await refused(rebilly.delete_draft, CancellationRef(cancellation_id="oc-def-3"))
        # A PUT the completed cancellation refuses: 422 (then read, and settled as refused).
        other = await refused(
            rebilly.put_cancellation,
            PutCancellation(
                cancellation_id="oc-def-3",
                body=plain("ord-9").body(RebillyStatus.CONFIRMED),
            ),
        )
        # Rate limited: 429 with the retry moment.
        admin.add_fault(provider="rebilly", method="PUT", mode="rate_limit", count=1)
        limited = await refused(
            rebilly.put_cancellation,
            PutCancellation(
                cancellation_id="oc-def-4",
                body=plain("ord-4").body(RebillyStatus.CONFIRMED),
            ),
        )
    async with rebilly_http_client(
        RebillySettings(base_url=server.rebilly_url, api_key="sk_wrong"),
        transport=recording,
    ) as wrong_key:
        unauthorized = await refused(
            RebillyActivities(wrong_key).find_cancellation,
            CancellationRef(cancellation_id="oc-def-1"),
        )

    assert "409" in conflict.message and "422" in other.message and "429" in limited.message
    assert "401" in unauthorized.message
    statuses = {(e.request.method, e.response.status_code) for e in recording.exchanges}
    assert statuses >= {
        ("PUT", 201), ("PUT", 200), ("PUT", 422), ("PUT", 429),
        ("GET", 200), ("GET", 404), ("GET", 401),
        ("DELETE", 204), ("DELETE", 409), ("POST", 201),
    }  # fmt: skip
    for exchange in recording.exchanges:
        op, cid = exchange.operation()
        assert request_problems(op, exchange.request, cid) == [], (op.name, exchange.request)
        assert response_problems(op, exchange.response) == [], (op.name, exchange.response.text)


async def test_the_upsert_that_revokes_fits_the_definition(
    server: SandboxServer, admin: SandboxAdmin
) -> None:
    put = OPERATIONS[("PUT", "cancellation")]
    url = f"{server.rebilly_url}/order-cancellations"
    async with httpx.AsyncClient(headers={"REB-APIKEY": API_KEY}) as http:
        bodies = [
            {"orderId": "ord-r", "churnTimePolicy": "at-next-renewal"},
            {"orderId": "ord-r", "status": "revoked"},
            {"orderId": "ord-r", "status": "revoked"},
            {"orderId": "ord-r", "status": "completed"},
        ]
        answers = [await http.put(f"{url}/oc-rev", json=body) for body in bodies]

    assert [a.status_code for a in answers] == [201, 200, 200, 422]
    assert [a.json().get("status") for a in answers[:3]] == ["confirmed", "revoked", "revoked"]
    for answer in answers:
        assert request_problems(put, answer.request, "oc-rev") == []
        assert response_problems(put, answer) == [], answer.text


async def test_the_client_slows_down_before_the_sandboxs_429(
    server: SandboxServer, admin: SandboxAdmin
) -> None:
    """Over real HTTP: the sandbox announces 20 writes; the client paces once fewer than
    half are left and meets the 429 only at the 21st write."""
    admin.configure(rebilly_write_rate_limit=20, rebilly_write_rate_limit_window_seconds=600)
    recording = Recording()
    waits: list[tuple[int, float]] = []  # (writes answered so far, wait before the next)
    simulated = [0.0]

    async def sleep(seconds: float) -> None:
        waits.append((len(recording.exchanges), seconds))
        simulated[0] += seconds  # the pacer's clock: only its own waits move it

    pacer = RateLimitPacer(slow_below=0.5, max_wait=2.0, clock=lambda: simulated[0], sleep=sleep)
    async with rebilly_http_client(settings_for(server), transport=recording) as http:
        assert isinstance(http, ProviderClient)
        http.pacer = pacer
        rebilly = RebillyActivities(http)
        for n in range(20):
            request = plain(f"ord-p{n}")
            put = PutCancellation(
                cancellation_id=f"oc-p{n}", body=request.body(RebillyStatus.DRAFT)
            )
            await ActivityEnvironment().run(rebilly.put_cancellation, put)
        over = await refused(
            rebilly.put_cancellation,
            PutCancellation(
                cancellation_id="oc-p20",
                body=plain("ord-p20").body(RebillyStatus.DRAFT),
            ),
        )

    remaining = [int(e.response.headers["X-RateLimit-Remaining"]) for e in recording.exchanges[:20]]
    assert [e.response.status_code for e in recording.exchanges] == [201] * 20 + [429]
    assert remaining == list(range(19, -1, -1))
    # Threshold 10 left: the writes after the answers 9, 8, ..., 0 waited, in proportion.
    assert [answered for answered, _ in waits] == list(range(11, 21))
    expected = [2.0 * (1 - (20 - answered) / 10) for answered in range(11, 21)]
    assert [wait for _, wait in waits] == pytest.approx(expected)
    assert "429" in over.message and over.next_retry_delay is not None
