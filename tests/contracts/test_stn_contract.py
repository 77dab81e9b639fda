"""sTN against its documented examples (``tests/contracts/stn/*.json``).

(a) Our client (``activities.stn.StnActivities``) parses every documented response
    and sends requests the docs describe.
(b) The sandbox answers the same calls with the documented shape: the same keys,
    the same nesting, the documented status vocabulary.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.stn import StnActivities
from domain.stn import ActivationStatus, AwaitActivation, CancelTermination, SubmitTermination
from sandbox.clock import ManualClock
from sandbox.settings import SandboxSettings
from sandbox.testing import SandboxAdmin, SandboxServer
from tests.contracts.docs import DocExample, load, shape

START = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)
KEY = {"stn-api-key": "sandbox-stn-key"}
DOCUMENTED_STATUSES = {status.value for status in ActivationStatus}
# Every key a documented Activation example of a termination (or its cancellation) has.
ACTIVATION_KEYS = {
    "id",
    "createdAt",
    "modifiedAt",
    "status",
    "activationType",
    "providerEnvironment",
    "referenceNumber",
    "subscriptionId",
    "phoneNumber",
    "activatedDate",
    "info",
}


def answering(example: DocExample, seen: list[httpx.Request]) -> httpx.AsyncClient:
    """A client whose every request gets the documented response."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(example.status, json=example.body)

    return httpx.AsyncClient(base_url="https://stn.example", transport=httpx.MockTransport(handler))


def at_attempt(attempt: int, scheduled: datetime = START) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = replace(env.info, attempt=attempt, scheduled_time=scheduled)
    return env


def query_of(*activations: dict[str, Any]) -> dict[str, Any]:
    return {"offset": 0, "total": len(activations), "results": list(activations), "meta": {}}


# ---------------------------------------------------------------- (a) our client


async def test_client_sends_a_documented_terminate_and_parses_the_answer() -> None:
    example = load("stn", "terminate_subscription")
    documented = example.request["json"]
    seen: list[httpx.Request] = []
    request = SubmitTermination(
        subscription_id=documented["subscriptionId"],
        phone_number="06-12345969",
        wish_date=datetime.fromisoformat(documented["wishDate"]),
        reference_number="REF-1",
    )
    result = await at_attempt(1).run(
        StnActivities(answering(example, seen)).submit_termination, request
    )
    assert (seen[0].method, seen[0].url.path) == ("POST", example.request["path"])
    body = json.loads(seen[0].content)
    assert set(body) <= set(example.request["parameters"])
    assert set(documented) <= set(body)
    assert datetime.fromisoformat(body["wishDate"]) == request.wish_date
    assert result.activation.id == example.body["id"]
    assert result.activation.status == example.body["status"]


async def test_client_polls_by_id_and_parses_the_documented_query_answer() -> None:
    example = load("stn", "query_activation_terminate")
    seen: list[httpx.Request] = []
    activities = StnActivities(answering(example, seen))
    checked = await at_attempt(1).run(
        activities.await_activation_final, AwaitActivation(activation_id="TER12345")
    )
    assert dict(seen[0].url.params) == example.request["query"]
    documented = example.body["results"][0]
    assert checked.activation.id == documented["id"]
    assert checked.activation.is_done and checked.activation.activated_date is not None
    assert checked.activation.info == {"wishDate": documented["info"]["wishDate"]}


async def test_lookup_before_resend_finds_a_submission_shaped_like_the_docs() -> None:
    """A retried submit must find the termination its lost first attempt created,
    by ``referenceNumber`` at the top level as the documented Activations carry it."""
    documented = load("stn", "cancel_terminate_subscription").body
    termination = {**documented, "id": "###eP7ds###WQJoIE"}
    seen: list[httpx.Request] = []
    example = DocExample("query", "", response={"status": 200, "json": query_of(termination)})
    request = SubmitTermination(
        subscription_id=documented["subscriptionId"],
        reference_number=documented["referenceNumber"],
    )
    # The first attempt was scheduled just before sTN created the activation.
    scheduled = datetime.fromisoformat(documented["createdAt"]) - timedelta(seconds=1)
    found = await at_attempt(2, scheduled).run(
        StnActivities(answering(example, seen)).submit_termination, request
    )
    assert found.recovered and found.activation.id == "###eP7ds###WQJoIE"
    assert [r.method for r in seen] == ["GET"], "must not terminate twice"
    documented_filters = load("stn", "query_activation_page").request["parameters"]
    params = seen[0].url.params
    assert set(params) <= {*documented_filters, "referenceNumber"}
    assert params["referenceNumber"] == documented["referenceNumber"]
    assert params["activationType"] == "TERMINATE"


async def test_top_level_reference_number_is_read_from_the_query_page_example() -> None:
    example = load("stn", "query_activation_page")
    seen: list[httpx.Request] = []
    activation = await at_attempt(1).run(
        StnActivities(answering(example, seen)).get_activation,
        AwaitActivation(activation_id="###gxhI5###Zvz9Js"),
    )
    assert activation.reference == "Test ###" and activation.status == "BUSY"


async def test_client_sends_a_documented_cancel_and_gets_the_cancellation() -> None:
    example = load("stn", "cancel_terminate_subscription")
    seen: list[httpx.Request] = []
    cancellation = await at_attempt(1).run(
        StnActivities(answering(example, seen)).cancel_termination,
        CancelTermination(activation_id="###eP7ds###WQJoIE", note=example.request["json"]["note"]),
    )
    body = json.loads(seen[0].content)
    assert (seen[0].method, seen[0].url.path) == ("POST", example.request["path"])
    assert set(body) <= set(example.request["parameters"])
    assert body == {"activationId": "###eP7ds###WQJoIE", "note": example.request["json"]["note"]}
    assert cancellation is not None
    assert cancellation.id == example.body["id"] != "###eP7ds###WQJoIE"
    assert cancellation.status == "BUSY" and not cancellation.is_final
    assert cancellation.reference == example.body["referenceNumber"]


@pytest.mark.parametrize("name", ["error_maximum_length", "error_missing_activation_id"])
async def test_documented_errors_become_rejections_with_sttns_message(name: str) -> None:
    example = load("stn", name)
    seen: list[httpx.Request] = []
    activities = StnActivities(answering(example, seen))
    with pytest.raises(ApplicationError) as rejected:
        if "TerminateSubscription" in example.request["path"]:
            submit = SubmitTermination(subscription_id="S", reference_number="R")
            await at_attempt(1).run(activities.submit_termination, submit)
        else:
            cancel = CancelTermination(activation_id="A")
            await at_attempt(1).run(activities.cancel_termination, cancel)
    assert rejected.value.non_retryable
    assert example.body["responseStatus"]["message"][:60] in rejected.value.message


# ---------------------------------------------------------------- (b) the sandbox


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    settings = SandboxSettings(stn_processing_delay_seconds=5, stn_cancellation_delay_seconds=1)
    with SandboxServer(settings, clock=ManualClock(START)) as running:
        yield running


@pytest.fixture
def stn(server: SandboxServer) -> Iterator[httpx.Client]:
    with SandboxAdmin(server.base_url) as admin:
        admin.reset()
    with httpx.Client(base_url=server.stn_url, headers=KEY) as client:
        yield client


def clock(server: SandboxServer) -> ManualClock:
    moving = server.sandbox.context.clock
    assert isinstance(moving, ManualClock)
    return moving


def activation(stn: httpx.Client, activation_id: str) -> dict[str, Any]:
    results: list[dict[str, Any]] = stn.get(
        "/api/QueryActivation", params={"id": activation_id}
    ).json()["results"]
    return results[0]


def test_sandbox_terminate_answers_the_documented_activation(stn: httpx.Client) -> None:
    example = load("stn", "terminate_subscription")
    body = {**example.request["json"], "phoneNumber": "06-12345969"}
    answer = stn.post(example.request["path"], json=body).json()
    # Before it executed there is no activatedDate; modifiedAt as in every other
    # documented Activation (the TerminateSubscription example omits it).
    assert set(example.body) - {"activatedDate"} <= set(answer) <= ACTIVATION_KEYS
    assert answer["activationType"] == "TERMINATE" and answer["status"] in DOCUMENTED_STATUSES
    assert answer["info"] == {"wishDate": body["wishDate"]}


def test_sandbox_query_answers_the_documented_shape(
    server: SandboxServer, stn: httpx.Client
) -> None:
    example = load("stn", "query_activation_terminate")
    documented = example.body["results"][0]
    wish = (START + timedelta(hours=1)).isoformat()
    created = stn.post(
        "/api/TerminateSubscription",
        json={"subscriptionId": "S-Q", "phoneNumber": "06-12345969", "wishDate": wish},
    ).json()
    clock(server).advance(hours=1, seconds=5)
    answer = stn.get(example.request["path"], params={"id": created["id"]}).json()
    assert shape(answer) == shape(example.body)
    assert answer["results"][0]["status"] == documented["status"] == "DONE"


def test_sandbox_cancel_answers_the_documented_cancellation(
    server: SandboxServer, stn: httpx.Client
) -> None:
    example = load("stn", "cancel_terminate_subscription")
    wish = (START + timedelta(days=30)).isoformat()
    termination = stn.post(
        "/api/TerminateSubscription",
        json={
            "subscriptionId": "S-C",
            "phoneNumber": "06-12345969",
            "wishDate": wish,
            "referenceNumber": "Test 1",
        },
    ).json()
    answer = stn.post(
        example.request["path"], json={"activationId": termination["id"], "note": "stays"}
    )
    assert answer.status_code == 200
    cancellation = answer.json()
    assert shape(cancellation) == shape(example.body)
    assert cancellation["id"] != termination["id"]
    assert (cancellation["status"], cancellation["activationType"]) == ("BUSY", "TERMINATE")
    assert cancellation["referenceNumber"] == "Test 1"
    clock(server).advance(seconds=1)
    assert activation(stn, cancellation["id"])["status"] == "DONE"
    clock(server).advance(days=31)
    assert activation(stn, termination["id"])["status"] != "DONE"


def test_sandbox_uses_only_documented_statuses(server: SandboxServer, stn: httpx.Client) -> None:
    with SandboxAdmin(server.base_url) as admin:
        admin.stn_set_outcome("S-ERR", "ERROR", "SIM blocked")
        admin.stn_set_outcome("S-KEEP", cancel_outcome="ERROR")
    seen: set[str] = set()
    ids = []
    for subscription in ("S-OK", "S-ERR", "S-KEEP", "S-CXL"):
        created = stn.post("/api/TerminateSubscription", json={"subscriptionId": subscription})
        ids.append(created.json()["id"])
    for termination in ids[2:]:
        cancelled = stn.post("/api/CancelTerminateSubscription", json={"activationId": termination})
        ids.append(cancelled.json()["id"])
    for _ in range(3):
        for item in stn.get("/api/QueryActivation", params={"take": 100}).json()["results"]:
            seen.add(item["status"])
            assert set(item) <= ACTIVATION_KEYS
        clock(server).advance(seconds=5)
    assert seen <= DOCUMENTED_STATUSES
    assert {"BUSY", "CANCELLING", "DONE", "ERROR"} <= seen


@pytest.mark.parametrize("name", ["error_maximum_length", "error_missing_activation_id"])
def test_sandbox_errors_are_the_documented_ones(stn: httpx.Client, name: str) -> None:
    example = load("stn", name)
    answer = stn.post(example.request["path"], json=example.request["json"])
    assert answer.status_code == example.status
    assert answer.json() == example.body


async def test_real_client_recovers_a_lost_submit_from_the_sandbox(server: SandboxServer) -> None:
    """End to end: the sandbox loses the answer; the retry finds it, sends nothing."""
    with SandboxAdmin(server.base_url) as admin:
        admin.reset()
        admin.add_fault(
            provider="stn", path="/api/TerminateSubscription", mode="drop_response", count=1
        )
        request = SubmitTermination(subscription_id="S-LOST", reference_number="REF-LOST")
        async with httpx.AsyncClient(base_url=server.stn_url, headers=KEY) as http:
            activities = StnActivities(http)
            with pytest.raises(ApplicationError):
                await at_attempt(1).run(activities.submit_termination, request)
            recovered = await at_attempt(2).run(activities.submit_termination, request)
        posts = admin.calls(provider="stn", method="POST", path="/api/TerminateSubscription")
    assert recovered.recovered and recovered.activation.reference == "REF-LOST"
    assert len(posts) == 1
