"""``POST /v1/events``: a CloudEvent (structured mode) starts the saga its type names.

The route is built when the app is created: its description lists the event types of
the kinds registered then; a request is served by the kinds registered when it comes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from config.settings import ApiKey, ApiScope
from domain.common import FieldProblem, InvalidRequest, parse_request
from starter.api import idempotency
from starter.api.auth import require
from starter.api.errors import ApiError
from starter.api.events import EVENT_CONTENT_TYPES, CloudEvent, event_types, kind_for
from starter.api.models import SagaAccepted
from starter.api.routes.common import json_object, orchestrator_settings, request_body
from starter.api.routes.starts import RESPONSES
from starter.api.starting import start
from starter.kinds import KINDS


def build_router() -> APIRouter:
    """The events route (``create_app`` calls this)."""
    router = APIRouter(prefix="/v1", tags=["events"])
    types = "\n".join(f"| `{spec.event_type}` | {spec.kind} |" for spec in KINDS)
    router.add_api_route(
        "/events",
        take_event,
        methods=["POST"],
        status_code=202,
        response_model=SagaAccepted,
        responses={**RESPONSES, 415: {"model": RESPONSES[401]["model"]}},
        summary="Take a CloudEvent: start the saga its type names",
        description=(
            "CloudEvents 1.0, structured mode (`application/cloudevents+json` or "
            "`application/json`). `data` is the request body of the saga's start "
            "endpoint. (`source`, `id`) identifies the delivery: a redelivery never "
            "starts a second saga.\n\n| type | saga |\n|---|---|\n" + types
        ),
        operation_id="take_event",
        openapi_extra=request_body("CloudEvent"),
    )
    return router


async def take_event(
    request: Request,
    response: Response,
    caller: Annotated[ApiKey, Depends(require(ApiScope.EVENTS_WRITE))],
) -> SagaAccepted:
    content_type = request.headers.get("content-type", "application/json")
    if content_type.split(";")[0].strip().lower() not in EVENT_CONTENT_TYPES:
        raise ApiError(
            415, f"send the event in structured mode: {' or '.join(EVENT_CONTENT_TYPES)}"
        )
    event = parse_request(CloudEvent, await json_object(request))
    spec = kind_for(event.type)
    if spec is None:
        raise InvalidRequest(
            [
                FieldProblem(
                    field="type",
                    rule=f"unsupported event type; supported: {', '.join(event_types())}",
                )
            ]
        )
    secret = orchestrator_settings(request).workflow_id_key.get_secret_value().encode()
    key = idempotency.event_key(secret, event.source, event.id)
    try:
        return await start(request, response, spec, event.data, key)
    except InvalidRequest as error:
        raise InvalidRequest(
            [FieldProblem(field=f"data.{p.field}", rule=p.rule) for p in error.problems]
        ) from None
