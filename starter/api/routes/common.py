"""What every route needs: the JSON body as the domain's parsers want it, URLs, Temporal."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import fastapi.routing
from fastapi import Path, Request
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.routing import BaseRoute
from temporalio.client import Client

from config.settings import OrchestratorSettings
from domain.common import FieldProblem, InvalidRequest, OperatorRequestKind
from starter.api.gateway import TemporalGateway
from starter.api.models import InvalidInput, Refusal

#: Workflow ids in paths: the business keys we make are far shorter.
WorkflowIdPath = Path(min_length=1, max_length=255, description="the saga's workflow id")

#: The actions under a saga's URL (``POST /v1/sagas/{id}/revoke``, ...).
SAGA_ACTIONS = (*(kind.value for kind in OperatorRequestKind), "cancel")


class SagaIdConvertor(PathConvertor):
    """``{workflow_id:saga_id}``: a workflow id, ``/`` and all, that does not end in
    ``/<action>``. Ids hold what callers sent (``terminate-<subscriptionId>``), so a
    ``/`` is possible; the status route must still leave ``GET .../revoke`` to the
    action's route (405, not a saga named ``x/revoke``)."""

    regex = "(?:(?!/(?:" + "|".join(SAGA_ACTIONS) + ")$).)+"


register_url_convertor("saga_id", SagaIdConvertor())

SAGA_ROUTE = "get_saga"

#: The answers most operations share, for their ``responses``.
UNAUTHENTICATED: dict[str, Any] = {
    "model": Refusal,
    "description": "No API key, or an unknown one (`Authorization: Bearer <key>`)",
}
FORBIDDEN: dict[str, Any] = {"model": Refusal, "description": "The API key lacks the scope"}
TOO_LARGE: dict[str, Any] = {
    "model": Refusal,
    "description": "The body is larger than `CANCEL_API_MAX_BODY_BYTES` (64 KiB by default)",
}
INVALID: dict[str, Any] = {
    "model": InvalidInput,
    "description": "Every broken rule, by field; nothing was started or changed",
}
UNAVAILABLE: dict[str, Any] = {
    "model": Refusal,
    "description": (
        "Temporal is unavailable: nothing was started or changed; retry after `Retry-After` seconds"
    ),
    "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
}


async def json_object(request: Request, *, optional: bool = False) -> dict[str, Any]:
    """The body as a JSON object, else InvalidRequest (field ``body``)."""
    raw = await request.body()
    if optional and not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise InvalidRequest([FieldProblem(field="body", rule="must be valid JSON")]) from None
    if not isinstance(data, dict):
        raise InvalidRequest([FieldProblem(field="body", rule="must be a JSON object")])
    return data


def status_url(request: Request, workflow_id: str) -> str:
    """The saga's status URL, the workflow id percent-encoded (``/`` too): ids hold
    what callers sent (``terminate-<subscriptionId>``), and a ``Location`` header only
    ASCII. The saga routes take the decoded id whole (``{workflow_id:path}``)."""
    return str(request.url_for(SAGA_ROUTE, workflow_id=quote(workflow_id, safe="")))


async def temporal(request: Request) -> Client:
    gateway: TemporalGateway = request.app.state.gateway
    return await gateway.client()


def orchestrator_settings(request: Request) -> OrchestratorSettings:
    settings: OrchestratorSettings = request.app.state.orchestrator_settings
    return settings


def request_body(model_name: str, *, required: bool = True) -> dict[str, Any]:
    """OpenAPI for a body the route reads itself (so the domain's parse_* runs on it)."""
    schema = {"$ref": f"#/components/schemas/{model_name}"}
    content = {"application/json": {"schema": schema}}
    return {"requestBody": {"required": required, "content": content}}


def matchable(routes: Sequence[BaseRoute]) -> list[Any]:
    """Routes as they can be matched against a request, each with its full template:
    FastAPI ≥ 0.137 nests included routers (``iter_route_contexts`` flattens them);
    before, the routes are matchable as they are."""
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    return list(flatten(routes)) if flatten is not None else list(routes)
