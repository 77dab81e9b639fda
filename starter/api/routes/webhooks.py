"""Provider webhooks: verified, then routed to the sagas that hold their subject.

Answered quickly and without judging the content: a provider retries anything but
2xx, so a verified webhook about nothing we hold is still 200 ("routedTo": []).
Forged or unauthenticated → 401 and no saga hears of it. Providers may deliver a
webhook more than once; each saga records a notice once.
"""

from __future__ import annotations

import hmac
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, Security, status
from fastapi.security import APIKeyHeader, HTTPBasic, HTTPBasicCredentials
from pydantic import Field, ValidationError

from config.settings import ApiSettings
from domain.common import CamelModel, NoticeEvent, Provider, ProviderNotice
from starter import routing
from starter.api import airalo_signature
from starter.api.errors import ApiError
from starter.api.models import Refusal
from starter.api.routes.common import TOO_LARGE, UNAVAILABLE, temporal

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
basic = HTTPBasic(auto_error=False, description="Rebilly's webhook credentials")
signature = APIKeyHeader(
    name=airalo_signature.HEADER,
    auto_error=False,
    scheme_name="AiraloSignature",
    description=(
        "Hex HMAC-SHA512 of the body, keyed with the partner's client secret "
        "(`CANCEL_API_AIRALO_WEBHOOK_SECRET`), as Airalo's official SDK signs it."
    ),
)
REBILLY_EVENTS = frozenset(
    {
        NoticeEvent.REBILLY_SUBSCRIPTION_CANCELED,
        NoticeEvent.REBILLY_SUBSCRIPTION_CHURNED,
        NoticeEvent.REBILLY_SUBSCRIPTION_REACTIVATED,
    }
)


class NoticeRouted(CamelModel):
    """What became of a webhook: the notice taken from it and the sagas told."""

    event: str | None = None
    subject: str | None = None
    routed_to: list[str] = Field(default_factory=list)


def _answers(forged: str) -> dict[int | str, dict[str, Any]]:
    return {
        400: {"model": Refusal, "description": "The body is not a JSON object"},
        401: {"model": Refusal, "description": forged},
        413: TOO_LARGE,
        503: {
            **UNAVAILABLE,
            "description": (
                "Webhooks from this provider are not configured, or Temporal is unavailable "
                "(then retry after `Retry-After` seconds)"
            ),
        },
    }


def _body(what: str) -> dict[str, Any]:
    """A webhook's body: any JSON object; the fields read are described, the rest ignored."""
    schema = {"type": "object", "additionalProperties": True, "description": what}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.api_settings
    return settings


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ApiError(400, "the webhook body must be a JSON object")
    return data


def _notice(provider: Provider, event: str, subject: Any, detail: str) -> ProviderNotice | None:
    """The notice a webhook carries, or None when its subject cannot be one of ours
    (not a string, empty, or longer than any id a saga holds)."""
    try:
        return ProviderNotice(provider=provider, event=event, subject=subject, detail=detail)
    except ValidationError:
        return None


async def _route(request: Request, notice: ProviderNotice) -> NoticeRouted:
    routed = await routing.route_notice(await temporal(request), notice)
    return NoticeRouted(event=notice.event, subject=notice.subject, routed_to=routed)


@router.head(
    "/airalo",
    summary="Airalo's check of the webhook URL",
    operation_id="airalo_url",
    response_class=Response,
    responses={200: {"description": "The URL takes Airalo's webhooks (no body)", "content": {}}},
)
async def airalo_url() -> Response:
    return Response(status_code=200)


@router.post(
    "/airalo",
    response_model=NoticeRouted,
    responses=_answers("The `airalo-signature` is missing or does not match the body"),
    summary="Airalo: a future order fired (airalo-signature checked)",
    operation_id="airalo_webhook",
    openapi_extra=_body(
        "Airalo's webhook: `request_id` names a future order that fired; a body without "
        "one is about nothing we hold (200, `routedTo` empty)."
    ),
)
async def airalo_webhook(
    request: Request, signed: Annotated[str | None, Security(signature)]
) -> NoticeRouted:
    secret = _settings(request).airalo_webhook_secret
    if secret is None:
        raise ApiError(503, "Airalo webhooks are not configured (CANCEL_API_AIRALO_WEBHOOK_SECRET)")
    body = await request.body()
    if not airalo_signature.verify(body, signed, secret.get_secret_value()):
        raise ApiError(401, "missing or invalid airalo-signature")
    notice = _notice(
        Provider.AIRALO,
        NoticeEvent.AIRALO_FUTURE_ORDER_FIRED,
        _json(body).get("request_id"),
        "Airalo's webhook",
    )
    if notice is None:
        return NoticeRouted()  # an order that was not a future order: nothing of ours
    return await _route(request, notice)


@router.post(
    "/rebilly",
    response_model=NoticeRouted,
    responses=_answers("No HTTP Basic credentials, or the wrong ones"),
    summary="Rebilly: subscription canceled / churned / reactivated (HTTP Basic auth)",
    operation_id="rebilly_webhook",
    openapi_extra=_body(
        "Rebilly's webhook: `eventType` `subscription-canceled`, `subscription-churned` or "
        "`subscription-reactivated` about the order `subscriptionId` is routed; any other "
        "is about nothing we act on (200, `routedTo` empty)."
    ),
)
async def rebilly_webhook(
    request: Request,
    credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)],
) -> NoticeRouted:
    settings = _settings(request)
    username, password = settings.rebilly_webhook_username, settings.rebilly_webhook_password
    if username is None or password is None:
        raise ApiError(503, "Rebilly webhooks are not configured (CANCEL_API_REBILLY_WEBHOOK_*)")
    if credentials is None or not (
        hmac.compare_digest(credentials.username.encode(), username.encode())
        & hmac.compare_digest(credentials.password.encode(), password.get_secret_value().encode())
    ):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Rebilly webhook credentials required (HTTP Basic)",
            headers={"WWW-Authenticate": "Basic"},
        )
    data = _json(await request.body())
    event = data.get("eventType")
    if not isinstance(event, str):
        return NoticeRouted()
    notice = None
    if event in REBILLY_EVENTS:
        notice = _notice(Provider.REBILLY, event, data.get("subscriptionId"), "Rebilly's webhook")
    if notice is None:
        return NoticeRouted(event=event)
    return await _route(request, notice)
