"""sTN activities in isolation: ActivityEnvironment + httpx mock transport.

The fake sTN answers QueryActivation from a list of documented-shape Activations
(``referenceNumber`` at the top level), filtering by the parameters the client
sends, so a lookup that sends the wrong filter finds nothing.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.stn import StnActivities
from domain.stn import AwaitActivation, CancelTermination, SubmitTermination

SUBMITTED_AT = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)


def activation(id: str, status: str = "BUSY", at: str = "12:00:00", **extra: Any) -> dict[str, Any]:
    return {
        "id": id,
        "createdAt": f"2030-01-15T{at}.000Z",
        "status": status,
        "activationType": "TERMINATE",
        "providerEnvironment": "SP16001",
        "referenceNumber": "REF1",
        "subscriptionId": "S1",
        "info": {},
        **extra,
    }


def rejection(code: str, message: str) -> tuple[int, dict[str, Any]]:
    return 400, {"responseStatus": {"errorCode": code, "message": message, "errors": []}}


class FakeStn:
    """Records requests; QueryActivation filters ``activations``; POSTs from ``routes``."""

    FILTERS = ("id", "referenceNumber", "subscriptionId", "activationType", "status")

    def __init__(self, activations: list[dict[str, Any]] | None = None, **routes: Any) -> None:
        self.activations = activations or []
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        name = request.url.path.rsplit("/", 1)[-1]
        if name == "QueryActivation":
            return httpx.Response(200, json=self.query(request.url.params))
        answer = self.routes[name]
        status, body = answer(request) if callable(answer) else answer
        return httpx.Response(status, json=body)

    def query(self, params: httpx.QueryParams) -> dict[str, Any]:
        found = [
            item
            for item in self.activations
            if all(params.get(key) in (None, item.get(key)) for key in self.FILTERS)
        ]
        found.sort(key=lambda item: str(item["createdAt"]), reverse="orderByDesc" in params)
        return {"offset": 0, "total": len(found), "results": found, "meta": {}}

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url="https://stn.example", transport=httpx.MockTransport(self)
        )

    def calls(self) -> list[str]:
        return [f"{r.method} {r.url.path.rsplit('/', 1)[-1]}" for r in self.requests]


def env_at_attempt(attempt: int) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = replace(env.info, attempt=attempt, scheduled_time=SUBMITTED_AT)
    return env


SUBMIT = SubmitTermination(subscription_id="S1", reference_number="REF1")


async def test_first_attempt_posts_without_looking_up() -> None:
    stn = FakeStn(TerminateSubscription=(200, activation("A1")))
    result = await env_at_attempt(1).run(StnActivities(stn.client()).submit_termination, SUBMIT)
    assert result.activation.id == "A1" and not result.recovered
    assert result.activation.reference == "REF1"
    assert stn.calls() == ["POST TerminateSubscription"]
    assert json.loads(stn.requests[0].content) == {
        "subscriptionId": "S1",
        "referenceNumber": "REF1",
    }


async def test_retry_finds_the_activation_by_its_top_level_reference() -> None:
    stn = FakeStn([activation("A1")])
    result = await env_at_attempt(2).run(StnActivities(stn.client()).submit_termination, SUBMIT)
    assert result.recovered and result.activation.id == "A1"
    assert stn.calls() == ["GET QueryActivation"]
    params = stn.requests[0].url.params
    assert params["referenceNumber"] == "REF1"
    assert params["activationType"] == "TERMINATE"
    assert params["subscriptionId"] == "S1"
    assert params["orderBy"] == "createdAt"


async def test_retry_takes_the_termination_not_its_cancellation() -> None:
    # Both carry the reference; the cancellation is created later.
    stn = FakeStn([activation("C1", at="12:00:05"), activation("A1", "CANCELLING")])
    result = await env_at_attempt(2).run(StnActivities(stn.client()).submit_termination, SUBMIT)
    assert result.activation.id == "A1"


async def test_retry_ignores_foreign_and_older_activations() -> None:
    foreign = activation("A9", referenceNumber="OTHER")
    older = {**activation("A0", "ERROR"), "createdAt": "2030-01-14T08:00:00.000Z"}
    stn = FakeStn([foreign, older], TerminateSubscription=(200, activation("A2")))
    result = await env_at_attempt(3).run(StnActivities(stn.client()).submit_termination, SUBMIT)
    assert result.activation.id == "A2" and not result.recovered
    assert stn.calls() == ["GET QueryActivation", "POST TerminateSubscription"]


@pytest.mark.parametrize("status", ["INIT", "BUSY", "CANCELLING", "SOMETHING_NEW"])
async def test_in_progress_statuses_raise_a_benign_retryable_error(status: str) -> None:
    stn = FakeStn([activation("A1", status)])
    with pytest.raises(ApplicationError) as pending:
        await ActivityEnvironment().run(
            StnActivities(stn.client()).await_activation_final, AwaitActivation(activation_id="A1")
        )
    assert pending.value.type == "StillPending" and not pending.value.non_retryable


@pytest.mark.parametrize("status", ["DONE", "ERROR"])
async def test_final_statuses_end_the_poll(status: str) -> None:
    stn = FakeStn([activation("C1", status)])
    checked = await env_at_attempt(4).run(
        StnActivities(stn.client()).await_activation_final, AwaitActivation(activation_id="C1")
    )
    assert checked.activation.status == status and checked.checks == 4


async def test_get_activation_reads_once_whatever_the_status() -> None:
    stn = FakeStn([activation("A1", "ERROR", info={"errorMessage": "cancelled"})])
    current = await ActivityEnvironment().run(
        StnActivities(stn.client()).get_activation, AwaitActivation(activation_id="A1")
    )
    assert current.status == "ERROR" and not current.is_done
    with pytest.raises(ApplicationError) as unknown:
        await ActivityEnvironment().run(
            StnActivities(stn.client()).get_activation, AwaitActivation(activation_id="nope")
        )
    assert unknown.value.non_retryable


async def test_cancel_returns_the_cancellation_activation() -> None:
    answer = activation("C1", at="12:00:05", info={"wishDate": "2030-02-01T00:00:00+01:00"})
    stn = FakeStn([activation("A1")], CancelTerminateSubscription=(200, answer))
    result = await env_at_attempt(1).run(
        StnActivities(stn.client()).cancel_termination,
        CancelTermination(activation_id="A1", note="customer stays"),
    )
    assert result is not None and result.id == "C1" and result.status == "BUSY"
    assert stn.calls() == ["POST CancelTerminateSubscription"]
    assert json.loads(stn.requests[0].content) == {"activationId": "A1", "note": "customer stays"}


async def test_cancel_retry_finds_the_cancellation_an_earlier_attempt_created() -> None:
    stn = FakeStn([activation("A1", "CANCELLING"), activation("C1", at="12:00:05")])
    result = await env_at_attempt(2).run(
        StnActivities(stn.client()).cancel_termination, CancelTermination(activation_id="A1")
    )
    assert result is not None and result.id == "C1"
    assert "POST CancelTerminateSubscription" not in stn.calls()
    lookup = stn.requests[-1].url.params
    assert lookup["referenceNumber"] == "REF1" and lookup["orderByDesc"] == "createdAt"


async def test_cancel_rejection_is_settled_by_the_existing_cancellation() -> None:
    stn = FakeStn(
        [activation("A1", "CANCELLING"), activation("C1", "DONE", at="12:00:05")],
        CancelTerminateSubscription=rejection("CancellationPending", "already being cancelled"),
    )
    result = await env_at_attempt(1).run(
        StnActivities(stn.client()).cancel_termination, CancelTermination(activation_id="A1")
    )
    assert result is not None and result.id == "C1" and result.status == "DONE"


async def test_cancel_of_an_executed_termination_is_refused() -> None:
    stn = FakeStn(
        [activation("A1", "DONE")],
        CancelTerminateSubscription=rejection(
            "AlreadyExecuted", "Activation A1 has already been executed"
        ),
    )
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(
            StnActivities(stn.client()).cancel_termination, CancelTermination(activation_id="A1")
        )
    assert refused.value.non_retryable and "already been executed" in refused.value.message


async def test_cancel_of_a_lost_submission_finds_it_by_reference() -> None:
    stn = FakeStn([activation("A1")], CancelTerminateSubscription=(200, activation("C1")))
    result = await env_at_attempt(1).run(
        StnActivities(stn.client()).cancel_termination, CancelTermination(submitted=SUBMIT)
    )
    assert result is not None and result.id == "C1"
    assert json.loads(stn.requests[-1].content) == {"activationId": "A1"}


async def test_cancel_of_an_unknown_submission_finds_nothing_to_undo() -> None:
    stn = FakeStn([])
    result = await ActivityEnvironment().run(
        StnActivities(stn.client()).cancel_termination, CancelTermination(submitted=SUBMIT)
    )
    assert result is None
