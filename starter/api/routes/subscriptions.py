"""``/v1/subscriptions``: outcome event subscriptions, their deliveries, replays.

Every operation needs the scope ``subscriptions:write`` (a subscription decides where
the product sends data). Bodies are read by the domain's ``parse_*`` (422 naming the
field: ``url``, ``secret``, ``types``); in production a URL whose host resolves to a
loopback, link-local or private address is 422 ``url``. Secrets are never answered.
Also the OpenAPI ``webhooks``: one entry per event type, with an example body
(:func:`install_webhooks`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request

from config.settings import ApiKey, ApiScope
from domain.outcomes import (
    DeliveryList,
    OutcomeEvent,
    OutcomeEventType,
    ReplayResult,
    SubscriptionList,
    SubscriptionView,
    parse_rotate_request,
    parse_subscription_request,
)
from starter import outcomes
from starter.api.auth import require
from starter.api.errors import ApiError
from starter.api.models import InvalidInput, Refusal
from starter.api.routes.common import json_object, orchestrator_settings, request_body, temporal

router = APIRouter(prefix="/v1/subscriptions", tags=["subscriptions"])

Manager = Annotated[ApiKey, Depends(require(ApiScope.SUBSCRIPTIONS_WRITE))]
SubscriptionId = Annotated[
    str, Path(min_length=1, max_length=64, description="the subscription's id (sub_...)")
]

_COMMON: dict[int | str, dict[str, Any]] = {
    401: {"model": Refusal},
    403: {"model": Refusal},
    422: {"model": InvalidInput},
    503: {"model": Refusal, "description": "Temporal unavailable: retry after Retry-After"},
}
_ONE: dict[int | str, dict[str, Any]] = {
    **_COMMON,
    404: {"model": Refusal, "description": "No subscription with this id"},
}


async def _found(call: Any) -> Any:
    try:
        return await call
    except outcomes.SubscriptionNotFound as missing:
        raise ApiError(404, str(missing)) from None
    except outcomes.SubscriptionDisabled as disabled:
        raise ApiError(409, str(disabled)) from None


@router.post(
    "",
    status_code=201,
    response_model=SubscriptionView,
    responses={**_COMMON, 413: {"model": Refusal}},
    summary="Subscribe a URL to outcome events (signed with its Standard Webhooks secret)",
    openapi_extra=request_body("SubscriptionRequest"),
)
async def add_subscription(request: Request, _: Manager) -> SubscriptionView:
    body = parse_subscription_request(await json_object(request))
    settings = orchestrator_settings(request)
    return await outcomes.add_subscription(
        await temporal(request), settings.task_queue, body, settings.environment
    )


@router.get("", response_model=SubscriptionList, responses=_COMMON, summary="Every subscription")
async def list_subscriptions(request: Request, _: Manager) -> SubscriptionList:
    task_queue = orchestrator_settings(request).task_queue
    found = await outcomes.list_subscriptions(await temporal(request), task_queue)
    return SubscriptionList(subscriptions=found)


@router.get("/{subscription_id}", response_model=SubscriptionView, responses=_ONE)
async def get_subscription(
    request: Request, subscription_id: SubscriptionId, _: Manager
) -> SubscriptionView:
    """One subscription (never its secret)."""
    task_queue = orchestrator_settings(request).task_queue
    view: SubscriptionView = await _found(
        outcomes.get_subscription(await temporal(request), task_queue, subscription_id)
    )
    return view


@router.delete(
    "/{subscription_id}",
    response_model=SubscriptionView,
    responses=_ONE,
    summary="Remove a subscription: no new deliveries; those under way end",
)
async def remove_subscription(
    request: Request, subscription_id: SubscriptionId, _: Manager
) -> SubscriptionView:
    task_queue = orchestrator_settings(request).task_queue
    view: SubscriptionView = await _found(
        outcomes.remove_subscription(await temporal(request), task_queue, subscription_id)
    )
    return view


@router.post(
    "/{subscription_id}/rotate",
    response_model=SubscriptionView,
    responses=_ONE,
    summary="A new secret; the previous one still signs for 24 hours (two signatures)",
    openapi_extra=request_body("RotateSecretRequest"),
)
async def rotate_secret(
    request: Request, subscription_id: SubscriptionId, _: Manager
) -> SubscriptionView:
    body = parse_rotate_request(await json_object(request))
    task_queue = orchestrator_settings(request).task_queue
    view: SubscriptionView = await _found(
        outcomes.rotate_secret(await temporal(request), task_queue, subscription_id, body.secret)
    )
    return view


@router.get(
    "/{subscription_id}/deliveries",
    response_model=DeliveryList,
    responses=_ONE,
    summary="The subscription's deliveries, newest first: delivered, retrying, failed",
)
async def list_deliveries(
    request: Request,
    subscription_id: SubscriptionId,
    _: Manager,
    limit: Annotated[int, Query(ge=1, le=outcomes.MAX_DELIVERIES)] = 100,
) -> DeliveryList:
    task_queue = orchestrator_settings(request).task_queue
    found = await _found(
        outcomes.list_deliveries(await temporal(request), task_queue, subscription_id, limit)
    )
    return DeliveryList(deliveries=found)


@router.post(
    "/{subscription_id}/replay",
    response_model=ReplayResult,
    responses={**_ONE, 409: {"model": Refusal, "description": "The subscription is disabled"}},
    summary="Start the failed deliveries again (the same events, the same webhook-id)",
)
async def replay(request: Request, subscription_id: SubscriptionId, _: Manager) -> ReplayResult:
    task_queue = orchestrator_settings(request).task_queue
    replayed = await _found(
        outcomes.replay_failed(await temporal(request), task_queue, subscription_id)
    )
    return ReplayResult(replayed=replayed)


# -- the events, as OpenAPI webhooks ---------------------------------------------------------

_EXAMPLE_TIME = datetime(2026, 12, 1, 0, 0, 5, tzinfo=UTC)
_EXTRA: dict[OutcomeEventType, tuple[str, dict[str, Any]]] = {
    OutcomeEventType.SCHEDULED: (
        "WAITING",
        {"revocableUntil": "2026-12-31T23:00:00+00:00", "wishDate": "2026-12-31T23:00:00Z"},
    ),
    OutcomeEventType.RESCHEDULED: (
        "WAITING",
        {"revocableUntil": "2027-01-31T23:00:00+00:00", "wishDate": "2027-01-31T23:00:00Z"},
    ),
    OutcomeEventType.REVOKED: ("REVOKED", {}),
    OutcomeEventType.COMPLETED: ("COMPLETED", {}),
    OutcomeEventType.FAILED: ("FAILED", {"lastError": "sTN reported ERROR: line not found"}),
    OutcomeEventType.COMPENSATED: ("COMPENSATED", {}),
    OutcomeEventType.NEEDS_ATTENTION: ("NEEDS_ATTENTION", {}),
    OutcomeEventType.JEOPARDY: ("POLLING", {"jeopardyCause": "stn_busy"}),
    OutcomeEventType.POINT_OF_NO_RETURN: ("POLLING", {}),
}
_WHEN = {
    OutcomeEventType.SCHEDULED: "The provider holds the effect for a date still ahead; "
    "revocable until then (sTN accepted, Rebilly confirmed, every churn part prepared).",
    OutcomeEventType.RESCHEDULED: "Held for another date after a reschedule.",
    OutcomeEventType.REVOKED: "Ended REVOKED: undone before the provider executed it.",
    OutcomeEventType.COMPLETED: "Ended COMPLETED: the provider carried it out.",
    OutcomeEventType.FAILED: "Ended FAILED: the provider refused, or could not be reached.",
    OutcomeEventType.COMPENSATED: "Ended COMPENSATED: a churn undid every part.",
    OutcomeEventType.NEEDS_ATTENTION: "Moved to NEEDS_ATTENTION: an operator must resolve it.",
    OutcomeEventType.JEOPARDY: "Near a deadline it has not met (once per cause).",
    OutcomeEventType.POINT_OF_NO_RETURN: "A churn's line is terminated: the rest is finished, "
    "not undone.",
}


def example_event(event_type: OutcomeEventType) -> OutcomeEvent:
    """An example of ``event_type`` for a churn (the kind that can emit every type)."""
    phase, extra = _EXTRA[event_type]
    kind = "CUSTOMER_CHURN"
    data: dict[str, Any] = {
        "workflowId": "churn-C-42",
        "phase": phase,
        "customerId": "C-42",
        "wishDate": "2026-12-31T23:00:00Z",
        "stn": {"subscriptionId": "SUB-1", "phoneNumber": "06-****5678", "activationId": "A-9"},
        "lastError": None,
        "steps": [{"at": "2026-12-01T00:00:01Z", "step": "received", "detail": "…"}],
        "jeopardy": [],
        "kind": kind,
        "sequence": 3,
        **extra,
    }
    if event_type == OutcomeEventType.JEOPARDY:
        data["jeopardy"] = [
            {
                "cause": "stn_busy",
                "at": "2027-01-01T05:00:00Z",
                "detail": "sTN has not executed the termination 6:00:00 after …",
                "clearedAt": None,
            }
        ]
    return OutcomeEvent(
        id="evt_9f1c2b7e5d4a4c3b8a6f0e1d2c3b4a59",
        type=event_type,
        subject="churn-C-42",
        time=_EXAMPLE_TIME,
        data=data,
    )


def install_webhooks(app: FastAPI) -> None:
    """One OpenAPI webhook per event type: what a subscriber receives, with an example."""
    for event_type in OutcomeEventType:
        example = example_event(event_type).model_dump(mode="json")
        body = {
            "required": True,
            "content": {
                "application/cloudevents+json": {
                    "schema": {"$ref": "#/components/schemas/OutcomeEvent"},
                    "example": example,
                }
            },
        }

        async def receive() -> None:
            """Documentation only: the subscriber's endpoint."""

        app.webhooks.add_api_route(
            f"/{event_type.value}",
            receive,
            methods=["POST"],
            name=event_type.value,
            summary=event_type.value,
            description=_WHEN[event_type]
            + " Headers: webhook-id (the event id, the same on every retry), "
            "webhook-timestamp, webhook-signature (Standard Webhooks, v1 HMAC-SHA256; two "
            "while a secret rotates). Answer 2xx; 5xx, 429 and timeouts are retried for 72 h; "
            "410 disables the subscription.",
            status_code=204,
            openapi_extra={"requestBody": body},
            tags=["outcome events"],
        )
