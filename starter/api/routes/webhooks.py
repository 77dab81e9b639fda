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

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import Field

from config.settings import ApiSettings
from domain.common import CamelModel, NoticeEvent, Provider, ProviderNotice
from starter import routing
from starter.api import airalo_signature
from starter.api.errors import ApiError
from starter.api.routes.common import temporal

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
basic = HTTPBasic(auto_error=False, description="Rebilly's webhook credentials")
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


async def _route(request: Request, notice: ProviderNotice) -> NoticeRouted:
    routed = await routing.route_notice(await temporal(request), notice)
    return NoticeRouted(event=notice.event, subject=notice.subject, routed_to=routed)


@router.head("/airalo", summary="Airalo's check of the webhook URL", operation_id="airalo_url")
async def airalo_url() -> Response:
    return Response(status_code=200)


@router.post(
    "/airalo",
    response_model=NoticeRouted,
    summary="Airalo: a future order fired (airalo-signature checked)",
    operation_id="airalo_webhook",
)
async def airalo_webhook(request: Request) -> NoticeRouted:
    secret = _settings(request).airalo_webhook_secret
    if secret is None:
        raise ApiError(503, "Airalo webhooks are not configured (CANCEL_API_AIRALO_WEBHOOK_SECRET)")
    body = await request.body()
    signature = request.headers.get(airalo_signature.HEADER)
    if not airalo_signature.verify(body, signature, secret.get_secret_value()):
        raise ApiError(401, "missing or invalid airalo-signature")
    request_id = _json(body).get("request_id")
    if not isinstance(request_id, str) or not request_id:
        return NoticeRouted()  # an order that was not a future order: nothing of ours
    notice = ProviderNotice(
        provider=Provider.AIRALO,
        event=NoticeEvent.AIRALO_FUTURE_ORDER_FIRED,
        subject=request_id,
        detail="Airalo's webhook",
    )
    return await _route(request, notice)


@router.post(
    "/rebilly",
    response_model=NoticeRouted,
    summary="Rebilly: subscription canceled / churned / reactivated (HTTP Basic auth)",
    operation_id="rebilly_webhook",
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
    event, subject = data.get("eventType"), data.get("subscriptionId")
    if event not in REBILLY_EVENTS or not isinstance(subject, str) or not subject:
        return NoticeRouted(event=event if isinstance(event, str) else None)
    notice = ProviderNotice(
        provider=Provider.REBILLY, event=event, subject=subject, detail="Rebilly's webhook"
    )
    return await _route(request, notice)
