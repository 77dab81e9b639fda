"""What every route needs: the JSON body as the domain's parsers want it, URLs, Temporal."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Path, Request
from temporalio.client import Client

from config.settings import OrchestratorSettings
from domain.common import FieldProblem, InvalidRequest
from starter.api.gateway import TemporalGateway

#: Workflow ids in paths: the business keys we make are far shorter.
WorkflowIdPath = Path(min_length=1, max_length=255, description="the saga's workflow id")

SAGA_ROUTE = "get_saga"


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
    return str(request.url_for(SAGA_ROUTE, workflow_id=workflow_id))


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
