"""sTN activities in isolation: ActivityEnvironment + httpx mock transport."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.stn import StnActivities
from domain.stn import AwaitActivation, CancelTermination, SubmitTermination

ACTIVATION = {
    "id": "A1",
    "status": "BUSY",
    "activationType": "TERMINATE",
    "subscriptionId": "S1",
    "info": {"referenceNumber": "REF1"},
}


class FakeStn:
    """Records requests; answers from a route table."""

    def __init__(self, routes: dict[str, Any]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.routes[f"{request.method} {request.url.path}"]
        status, body = answer(request) if callable(answer) else answer
        return httpx.Response(status, json=body)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url="https://stn.example", transport=httpx.MockTransport(self)
        )


def env_at_attempt(attempt: int) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = replace(env.info, attempt=attempt)
    return env


SUBMIT = SubmitTermination(subscription_id="S1", reference_number="REF1")


async def test_first_attempt_posts_without_looking_up() -> None:
    stn = FakeStn({"POST /api/TerminateSubscription": (200, ACTIVATION)})
    result = await env_at_attempt(1).run(StnActivities(stn.client()).submit_termination, SUBMIT)
    assert result.activation.id == "A1" and not result.recovered
    assert [r.method for r in stn.requests] == ["POST"]
    assert json.loads(stn.requests[0].content) == {
        "subscriptionId": "S1",
        "referenceNumber": "REF1",
    }


async def test_retry_finds_the_activation_a_lost_response_created() -> None:
    stn = FakeStn({"GET /api/QueryActivation": (200, {"results": [ACTIVATION], "total": 1})})
    result = await env_at_attempt(2).run(StnActivities(stn.client()).submit_termination, SUBMIT)
    assert result.recovered and result.activation.id == "A1"
    assert [r.method for r in stn.requests] == ["GET"]
    assert stn.requests[0].url.params["subscriptionId"] == "S1"


async def test_retry_ignores_cancelled_and_foreign_activations() -> None:
    cancelled = {**ACTIVATION, "id": "A0", "status": "CANCELLED"}
    foreign = {**ACTIVATION, "id": "A9", "info": {"referenceNumber": "OTHER"}}
    stn = FakeStn(
        {
            "GET /api/QueryActivation": (200, {"results": [cancelled, foreign]}),
            "POST /api/TerminateSubscription": (200, {**ACTIVATION, "id": "A2"}),
        }
    )
    result = await env_at_attempt(3).run(StnActivities(stn.client()).submit_termination, SUBMIT)
    assert result.activation.id == "A2" and not result.recovered


async def test_pending_activation_raises_a_benign_retryable_error() -> None:
    stn = FakeStn({"GET /api/QueryActivation": (200, {"results": [ACTIVATION]})})
    with pytest.raises(ApplicationError) as pending:
        await ActivityEnvironment().run(
            StnActivities(stn.client()).await_activation_final, AwaitActivation(activation_id="A1")
        )
    assert pending.value.type == "StillPending" and not pending.value.non_retryable


async def test_cancel_rejection_is_success_when_already_cancelled() -> None:
    stn = FakeStn(
        {
            "POST /api/CancelTerminateSubscription": (
                400,
                {
                    "responseStatus": {
                        "errorCode": "AlreadyCancelled",
                        "message": "already cancelled",
                    }
                },
            ),
            "GET /api/QueryActivation": (200, {"results": [{**ACTIVATION, "status": "CANCELLED"}]}),
        }
    )
    result = await ActivityEnvironment().run(
        StnActivities(stn.client()).cancel_termination, CancelTermination(activation_id="A1")
    )
    assert result is not None and result.status == "CANCELLED"


async def test_cancel_of_an_executed_termination_is_refused() -> None:
    stn = FakeStn(
        {
            "POST /api/CancelTerminateSubscription": (
                400,
                {
                    "responseStatus": {
                        "errorCode": "AlreadyExecuted",
                        "message": "Activation A1 has already been executed",
                    }
                },
            ),
            "GET /api/QueryActivation": (200, {"results": [{**ACTIVATION, "status": "DONE"}]}),
        }
    )
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(
            StnActivities(stn.client()).cancel_termination, CancelTermination(activation_id="A1")
        )
    assert refused.value.non_retryable and "already been executed" in refused.value.message


async def test_cancel_of_an_unknown_submission_finds_nothing_to_undo() -> None:
    stn = FakeStn({"GET /api/QueryActivation": (200, {"results": []})})
    result = await ActivityEnvironment().run(
        StnActivities(stn.client()).cancel_termination, CancelTermination(submitted=SUBMIT)
    )
    assert result is None
