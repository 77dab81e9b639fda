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

from config.settings import ApiSettings, OrchestratorSettings, default_of
from domain.bulk import BulkRequest
from domain.churn import ResolveRequest
from domain.common import MAX_SCHEDULE_AHEAD, RescheduleRequest, RevokeRequest
from domain.outcomes import OutcomeEvent, RotateSecretRequest, SubscriptionRequest
from starter.api import contract
from starter.api.events import CloudEvent
from starter.kinds import KINDS

TITLE = "cancellation-orchestrator"
VERSION = "1"
DESCRIPTION = (
    "Start, inspect and steer durable cancellation sagas (Temporal), and take "
    "CloudEvents that start them. Every call but /healthz, /readyz and the provider "
    "webhooks needs `Authorization: Bearer <API key>` with the scope the operation "
    "names: `sagas:write` (start, steer), `sagas:read` (status, list), `events:write` "
    "(events), `subscriptions:write` (outcome event subscriptions). The `webhooks` are "
    "the outcome events a subscription receives.\n\n"
    "The request schemas state every rule the API checks that JSON Schema can say; "
    "the others are said in the fields' descriptions (a scheduled date lies ahead of "
    f"the server's clock, at most {MAX_SCHEDULE_AHEAD.days} days). Ids are read in "
    "Unicode NFKC form and trimmed. Bodies are at most `CANCEL_API_MAX_BODY_BYTES` "
    f"({default_of(ApiSettings, 'max_body_bytes') // 1024} KiB) as sent. An operator "
    "request (revoke, reschedule, confirm, resolve) and a saga's status wait for the "
    "saga at most `CANCEL_OPERATOR_WAIT_SECONDS` "
    f"({default_of(OrchestratorSettings, 'operator_wait_seconds'):g} s): then 202 with the "
    "status URL (a status: 503 with `Retry-After`), never a connection left hanging."
)

#: The request models besides each saga kind's.
OTHER_REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    CloudEvent,
    RevokeRequest,
    RescheduleRequest,
    ResolveRequest,
    BulkRequest,
    SubscriptionRequest,
    RotateSecretRequest,
    OutcomeEvent,
)


def build_openapi(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        routes=app.routes,
        webhooks=app.webhooks.routes,
    )
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
