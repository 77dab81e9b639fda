"""Rebilly's documented contract, held against our client and against our sandbox.

``tests/contracts/rebilly/*.json`` are the documented request and response examples of
every Rebilly call we make, each naming its source in ``_source`` (Rebilly's OpenAPI
definition in ``Rebilly/api-definitions``, and seed 002):

* (a) our activities build the requests the docs describe and read the documented
  responses (``httpx.MockTransport`` answering with the documented examples);
* (b) the sandbox answers in the documented shapes: the same keys and nesting, the same
  JSON types (``null`` only where the schema allows it), the documented status and enum
  vocabularies, and only the response codes documented for each call.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.rebilly import RebillyActivities, rebilly_http_client
from config.settings import RebillySettings
from domain.rebilly import (
    Cancellation,
    CancellationBody,
    CancellationRef,
    PutCancellation,
    ReactivateOrder,
    ReactivationOutcome,
    RebillyStatus,
)
from sandbox.app import create_app
from sandbox.clock import ManualClock
from sandbox.settings import SandboxSettings
from tests.contracts.rebilly_requests import ORDER, every_settable_field
from tests.sandbox.conftest import REBILLY_BASE, REBILLY_HEADERS, START

FIXTURES = Path(__file__).parent / "rebilly"
OUR_ID = "oc-contract-1"

Answer = tuple[int, dict[str, Any] | None, dict[str, str]]


def documented(name: str) -> dict[str, Any]:
    """One fixture, freshly read (tests may change what they get)."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def answer(name: str, code: int | None = None, **body_changes: Any) -> Answer:
    """A documented response: its status (or ``code``), body with changes, headers."""
    fixture = documented(name)
    return code or fixture["status"], fixture["body"] | body_changes, fixture.get("headers", {})


# -- comparing shapes ------------------------------------------------------------------------


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object" if isinstance(value, dict) else "array" if isinstance(value, list) else "null"


def _field(path: str) -> str:
    """``lineItems.0.description`` → ``lineItems.description`` (how fixtures name fields)."""
    return ".".join(part for part in path.split(".") if not part.isdigit())


def shape_differences(
    expected: Any,
    actual: Any,
    nullable: frozenset[str] = frozenset(),
    optional: frozenset[str] = frozenset(),
    path: str = "",
) -> list[str]:
    """Where ``actual`` leaves the documented shape of ``expected`` (empty: same shape).

    Objects need the same keys (an ``optional`` one may be left out); every array item
    has the shape of the documented first item; scalars need the documented JSON type,
    or ``null`` where the field is ``nullable``.
    """
    where = path or "body"
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: {_json_type(actual)} instead of an object"]
        prefix = f"{path}." if path else ""
        missing = [key for key in expected.keys() - actual if _field(prefix + key) not in optional]
        differences = [f"{where}: undocumented {key!r}" for key in sorted(actual.keys() - expected)]
        differences += [f"{where}: missing {key!r}" for key in sorted(missing)]
        for key in sorted(expected.keys() & actual.keys()):
            differences += shape_differences(
                expected[key], actual[key], nullable, optional, prefix + key
            )
        return differences
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{where}: {_json_type(actual)} instead of an array"]
        return [
            difference
            for index, item in enumerate(actual)
            for difference in shape_differences(
                expected[0], item, nullable, optional, f"{path}.{index}"
            )
        ]
    if actual is None:
        if expected is None or _field(path) in nullable:
            return []
        return [f"{where}: null, not nullable"]
    if expected is not None and _json_type(expected) != _json_type(actual):
        return [f"{where}: {_json_type(actual)} instead of {_json_type(expected)}"]
    return []


def test_shape_differences_names_every_break() -> None:
    expected = {"a": "x", "n": None, "items": [{"q": 1, "o": "x"}]}
    fine = {"a": "y", "n": "now", "items": [{"q": 2}]}
    assert shape_differences(expected, fine, optional=frozenset({"items.o"})) == []
    broken = {"a": None, "items": [{"q": "1", "o": None}], "z": 1}
    assert shape_differences(expected, broken) == [
        "body: undocumented 'z'",
        "body: missing 'n'",
        "a: null, not nullable",
        "items.0.o: null, not nullable",
        "items.0.q: string instead of number",
    ]


def assert_documented_shape(name: str, actual: Any) -> None:
    fixture = documented(name)
    nullable = frozenset(fixture.get("nullable", ()))
    optional = frozenset(fixture.get("optional", ()))
    assert shape_differences(fixture["body"], actual, nullable, optional) == [], actual


# -- (a) our client against the documented examples ------------------------------------------


class DocumentedRebilly:
    """A mock Rebilly: each ``"METHOD /path"`` answers its listed answers in turn."""

    def __init__(self, routes: dict[str, list[Answer]]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path.removeprefix("/organizations/org")
        status, body, headers = self.routes[f"{request.method} {path}"].pop(0)
        if body is None:
            return httpx.Response(status, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    def activities(self) -> RebillyActivities:
        client = httpx.AsyncClient(
            base_url="https://api-sandbox.rebilly.com/organizations/org",
            transport=httpx.MockTransport(self),
        )
        return RebillyActivities(client)

    def sent(self, method: str) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.method == method]


MINE = f"/order-cancellations/{OUR_ID}"


def test_the_documented_cancellation_parses() -> None:
    body = documented("order_cancellation.response")["body"]
    cancellation = Cancellation.model_validate(body)
    assert (cancellation.id, cancellation.order_id) == (body["id"], body["orderId"])
    assert cancellation.status == RebillyStatus.CONFIRMED
    assert cancellation.churn_time == datetime(2020, 7, 10, 13, 55, 51, tzinfo=UTC)
    assert cancellation.line_item_subtotal is not None
    assert cancellation.line_item_subtotal.amount == 49.95


def test_our_put_body_models_every_documented_writable_field() -> None:
    # CancellationBody forbids unknown fields: a writable field we did not model fails here.
    request = documented("put_order_cancellation.request")["body"]
    body = CancellationBody.model_validate(request)
    sent = body.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert sent == {key: value for key, value in request.items() if value is not None}


async def test_put_sends_only_documented_writable_fields_and_reads_the_answer() -> None:
    contract = documented("put_order_cancellation.request")
    writable = contract["body"]
    rebilly = DocumentedRebilly({f"PUT {MINE}": [answer("order_cancellation.response", id=OUR_ID)]})
    put = PutCancellation(
        cancellation_id=OUR_ID, body=every_settable_field().body(RebillyStatus.DRAFT)
    )

    result = await ActivityEnvironment().run(rebilly.activities().put_cancellation, put)

    (sent,) = rebilly.sent("PUT")
    assert set(contract["required"]) <= sent.keys() <= writable.keys()
    for item in sent["lineItems"]:
        assert set(contract["lineItemRequired"]) <= item.keys() <= writable["lineItems"][0].keys()
    vocabulary = documented("order_cancellation.response")["vocabulary"]
    assert all(sent[field] in vocabulary[field] for field in ("status", "reason", "canceledBy"))
    assert result.created and result.cancellation.id == OUR_ID


def test_requests_carry_the_secret_key_header() -> None:
    client = rebilly_http_client(RebillySettings(api_key=SecretStr("sk_test")))
    assert client.headers["REB-APIKEY"] == "sk_test"


async def test_reactivation_sends_the_documented_body_and_reads_the_answer() -> None:
    contract = documented("post_order_reactivation.request")
    mine = {"id": OUR_ID, "orderId": ORDER}
    rebilly = DocumentedRebilly(
        {
            f"GET {MINE}": [
                answer("order_cancellation.response", 200, **mine),
                answer("order_cancellation.response", 200, **mine, status="revoked"),
            ],
            "POST /order-reactivations": [answer("order_reactivation.response")],
        }
    )
    reactivate = ReactivateOrder(cancellation_id=OUR_ID, order_id=ORDER, description="stays")

    result = await ActivityEnvironment().run(rebilly.activities().reactivate_order, reactivate)

    (sent,) = rebilly.sent("POST")
    assert (
        set(contract["required"]) <= sent.keys() <= {*contract["required"], *contract["optional"]}
    )
    assert result.outcome == ReactivationOutcome.REACTIVATED
    assert result.reactivation_id == documented("order_reactivation.response")["body"]["id"]
    assert result.cancellation.status == RebillyStatus.REVOKED


async def test_documented_not_found_means_no_such_cancellation() -> None:
    rebilly = DocumentedRebilly({f"GET {MINE}": [answer("problem.not_found")]})
    found = await ActivityEnvironment().run(
        rebilly.activities().find_cancellation, CancellationRef(cancellation_id=OUR_ID)
    )
    assert found is None


async def test_documented_delete_answers() -> None:
    rebilly = DocumentedRebilly({f"DELETE {MINE}": [(204, None, {}), answer("problem.conflict")]})
    delete = rebilly.activities().delete_draft
    deleted = await ActivityEnvironment().run(delete, CancellationRef(cancellation_id=OUR_ID))
    assert not deleted.already_gone
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(delete, CancellationRef(cancellation_id=OUR_ID))
    assert refused.value.type == "ProviderRejected" and refused.value.non_retryable
    assert "Only order cancellations with a status of draft" in refused.value.message


@pytest.mark.parametrize(
    ("problem", "error_type", "retryable", "says"),
    [
        ("problem.validation_error", "ProviderRejected", False, "subObject.field2: field2"),
        ("problem.unauthorized", "ProviderRejected", False, "Invalid credentials"),
        ("problem.too_many_requests", "ProviderUnavailable", True, "Rate Limit Exceeded"),
    ],
)
async def test_documented_problems_on_put(
    problem: str, error_type: str, retryable: bool, says: str
) -> None:
    rebilly = DocumentedRebilly(
        {f"PUT {MINE}": [answer(problem)], f"GET {MINE}": [answer("problem.not_found")]}
    )
    put = PutCancellation(
        cancellation_id=OUR_ID, body=every_settable_field().body(RebillyStatus.CONFIRMED)
    )
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(rebilly.activities().put_cancellation, put)
    assert failed.value.type == error_type and failed.value.non_retryable is not retryable
    assert says in failed.value.message


async def test_documented_refusal_of_a_put_our_id_already_holds_is_settled() -> None:
    # 422 is the refusal PUT documents; our id holding our confirmed cancellation is success.
    mine = {"id": OUR_ID, "orderId": ORDER, "status": "completed"}
    rebilly = DocumentedRebilly(
        {
            f"PUT {MINE}": [answer("problem.validation_error")],
            f"GET {MINE}": [answer("order_cancellation.response", 200, **mine)],
        }
    )
    put = PutCancellation(
        cancellation_id=OUR_ID, body=every_settable_field().body(RebillyStatus.CONFIRMED)
    )
    result = await ActivityEnvironment().run(rebilly.activities().put_cancellation, put)
    assert result.recovered and result.cancellation.status == RebillyStatus.COMPLETED


# -- (b) the sandbox against the documented shapes --------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def sandbox(clock: ManualClock) -> AsyncIterator[httpx.AsyncClient]:
    """The sandbox app in-process, with the settings ``tests/sandbox`` uses."""
    settings = SandboxSettings(
        rebilly_api_key=REBILLY_HEADERS["REB-APIKEY"],
        rebilly_organization_id="org-sandbox",
        rebilly_default_renewal_days=30,
        state_file=None,
    )
    transport = httpx.ASGITransport(app=create_app(settings, clock=clock))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sandbox" + REBILLY_BASE, headers=REBILLY_HEADERS
    ) as client:
        yield client


async def test_sandbox_accepts_the_documented_request_and_answers_its_shape(
    sandbox: httpx.AsyncClient,
) -> None:
    request = documented("put_order_cancellation.request")["body"]

    created = await sandbox.put(f"/order-cancellations/{OUR_ID}", json=request)
    fetched = await sandbox.get(f"/order-cancellations/{OUR_ID}")

    assert created.status_code == 201 and "Location" in created.headers
    assert_documented_shape("order_cancellation.response", created.json())
    assert fetched.status_code == 200
    assert_documented_shape("order_cancellation.response", fetched.json())


async def test_sandbox_answers_our_own_requests_in_the_documented_shape(
    sandbox: httpx.AsyncClient,
) -> None:
    activities = RebillyActivities(sandbox)
    put = PutCancellation(
        cancellation_id=OUR_ID, body=every_settable_field().body(RebillyStatus.DRAFT)
    )
    result = await ActivityEnvironment().run(activities.put_cancellation, put)
    assert result.created and result.cancellation.status == RebillyStatus.DRAFT
    assert_documented_shape(
        "order_cancellation.response", (await sandbox.get(f"/order-cancellations/{OUR_ID}")).json()
    )


async def test_sandbox_statuses_are_the_documented_vocabulary(
    sandbox: httpx.AsyncClient, clock: ManualClock
) -> None:
    vocabulary = documented("order_cancellation.response")["vocabulary"]
    bodies = {
        "draft": {"orderId": "o1", "status": "draft"},
        "confirmed": {"orderId": "o2", "churnTimePolicy": "at-next-renewal"},
        "completes": {"orderId": "o3", "churnTime": "2030-01-16T00:00:00Z"},
        "revoked": {"orderId": "o4", "churnTime": "2030-02-01T00:00:00Z"},
    }
    seen = [
        (await sandbox.put(f"/order-cancellations/{name}", json=body)).json()
        for name, body in bodies.items()
    ]
    await sandbox.post("/order-reactivations", json={"orderId": "o4"})
    clock.advance(days=1)
    listed = await sandbox.get("/order-cancellations")
    seen += listed.json()

    assert {c["status"] for c in listed.json()} == set(vocabulary["status"])
    for cancellation in seen:
        assert_documented_shape("order_cancellation.response", cancellation)
        for field in ("status", "reason", "canceledBy", "churnTimePolicy"):
            assert cancellation[field] in vocabulary[field]


async def test_sandbox_reactivation_has_the_documented_shape(sandbox: httpx.AsyncClient) -> None:
    request = documented("post_order_reactivation.request")["body"]
    await sandbox.put(
        f"/order-cancellations/{OUR_ID}",
        json={"orderId": request["orderId"], "churnTimePolicy": "at-next-renewal"},
    )

    created = await sandbox.post("/order-reactivations", json=request)
    fetched = await sandbox.get(created.headers["Location"])

    assert created.status_code == 201
    assert_documented_shape("order_reactivation.response", created.json())
    assert created.json()["cancellationId"] == OUR_ID
    assert fetched.status_code == 200 and fetched.json() == created.json()


async def _refusals(sandbox: httpx.AsyncClient) -> list[tuple[str, httpx.Response]]:
    """Every way the sandbox refuses the calls we make, as ``(call, response)``."""
    unauthorized = {"REB-APIKEY": "sk_wrong"}
    put, delete = "PUT /order-cancellations/{id}", "DELETE /order-cancellations/{id}"
    get, reactivate = "GET /order-cancellations/{id}", "POST /order-reactivations"
    await sandbox.put(
        "/order-cancellations/held", json={"orderId": "busy", "churnTime": "2031-01-01T00:00:00Z"}
    )
    await sandbox.put(
        "/order-cancellations/done", json={"orderId": "churned", "churnTimePolicy": "now"}
    )
    return [
        (
            put,
            await sandbox.put(
                "/order-cancellations/x", json={"orderId": "o"}, headers=unauthorized
            ),
        ),
        (put, await sandbox.put("/order-cancellations/x", json={"reason": "bored"})),
        (put, await sandbox.put("/order-cancellations/x", json={"orderId": "busy"})),
        (put, await sandbox.put("/order-cancellations/x", json={"orderId": "churned"})),
        (put, await sandbox.put("/order-cancellations/held", json={"orderId": "other"})),
        (put, await sandbox.put("/order-cancellations/done", json={"orderId": "churned"})),
        (get, await sandbox.get("/order-cancellations/nope")),
        (get, await sandbox.get("/order-cancellations/nope", headers=unauthorized)),
        (delete, await sandbox.delete("/order-cancellations/held")),
        (delete, await sandbox.delete("/order-cancellations/nope")),
        (reactivate, await sandbox.post("/order-reactivations", json={})),
        (
            reactivate,
            await sandbox.post("/order-reactivations", json={"orderId": "never-cancelled"}),
        ),
    ]


PROBLEM_FIXTURES = {
    401: "problem.unauthorized",
    404: "problem.not_found",
    409: "problem.conflict",
    422: "problem.validation_error",
    429: "problem.too_many_requests",
}


async def test_sandbox_refuses_only_with_documented_codes_and_problem_shapes(
    sandbox: httpx.AsyncClient,
) -> None:
    endpoints = documented("endpoints")
    for call, response in await _refusals(sandbox):
        assert response.status_code in endpoints[call], (call, response.text)
        problem = response.json()
        assert_documented_shape(PROBLEM_FIXTURES[response.status_code], problem)
        assert problem["status"] == response.status_code
        assert urlparse(problem["type"]).scheme, problem["type"]


async def test_sandbox_rate_limit_has_the_documented_epoch_header(
    sandbox: httpx.AsyncClient,
) -> None:
    await sandbox.post(
        "http://sandbox/_sandbox/faults", json={"provider": "rebilly", "mode": "rate_limit"}
    )
    response = await sandbox.put(f"/order-cancellations/{OUR_ID}", json={"orderId": ORDER})
    assert response.status_code == 429
    assert_documented_shape("problem.too_many_requests", response.json())
    assert all(
        name in response.headers for name in documented("problem.too_many_requests")["headers"]
    )
    assert int(response.headers["X-RateLimit-Retry-After"]) >= int(START.timestamp())
