"""The OpenAPI document: generated from the routes and the domain's request models.

Start and steering routes read their body themselves (so the domain's ``parse_*``
rules run exactly as for ``cancelctl``); their request schemas are added here from
the same pydantic models, with the rules the domain checks in code stated as well
(:mod:`starter.api.contract`). ``make openapi`` writes ``docs/openapi.json``;
``tests/api/test_openapi.py`` fails when the committed file drifts from the code.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from domain.churn import ResolveRequest
from domain.common import RescheduleRequest, RevokeRequest
from starter.api import contract
from starter.api.events import CloudEvent
from starter.kinds import KINDS

TITLE = "cancellation-orchestrator"
VERSION = "1"
DESCRIPTION = (
    "Start, inspect and steer durable cancellation sagas (Temporal), and take "
    "CloudEvents that start them. Every call but /healthz and /readyz needs "
    "`Authorization: Bearer <API key>` with the scope the operation names: "
    "`sagas:write` (start, steer), `sagas:read` (status, list), `events:write` (events)."
)

#: The request models besides each saga kind's.
OTHER_REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    CloudEvent,
    RevokeRequest,
    RescheduleRequest,
    ResolveRequest,
)


def build_openapi(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(title=TITLE, version=VERSION, description=DESCRIPTION, routes=app.routes)
    _, definitions = models_json_schema(
        [
            (model, "validation")
            for model in (*(spec.model for spec in KINDS), *OTHER_REQUEST_MODELS)
        ],
        ref_template="#/components/schemas/{model}",
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in definitions.get("$defs", {}).items():
        components.setdefault(name, definition)
    contract.refine(components)
    return schema


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def render(app: FastAPI) -> str:
    return json.dumps(build_openapi(app), indent=2, sort_keys=True) + "\n"


def main() -> None:
    from starter.api.app import create_app

    sys.stdout.write(render(create_app()))


if __name__ == "__main__":
    main()
