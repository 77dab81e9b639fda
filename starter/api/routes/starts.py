"""``POST /v1/<path>``: start a saga of each kind (202), idempotent with a header.

One route per entry of :mod:`starter.kinds`, built when the app is created.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response

from config.settings import ApiKey, ApiScope
from domain.common import FieldProblem, InvalidRequest
from starter.api import idempotency
from starter.api.auth import require
from starter.api.models import Refusal, SagaAccepted
from starter.api.routes.common import (
    FORBIDDEN,
    INVALID,
    TOO_LARGE,
    UNAUTHENTICATED,
    UNAVAILABLE,
    json_object,
    orchestrator_settings,
    request_body,
)
from starter.api.starting import start
from starter.kinds import KINDS, SagaKindSpec

IDEMPOTENCY_HEADER_HELP = (
    "Identifies this delivery: a retry with the same key and the same body never "
    "starts a second saga (200 with that saga); the same key with another body is 409. "
    "Must not contain personal data (it is hashed before it is stored)."
)

#: ``Location`` of a start's answer: the saga's status.
LOCATION = {
    "Location": {
        "description": "the saga's status URL (`statusUrl`)",
        "schema": {"type": "string"},
        "required": True,
    }
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": SagaAccepted,
        "description": (
            "Nothing new started: a redelivery (`duplicateDelivery`: the saga this key "
            "started) or a request its saga already carried out (`alreadyCompleted`), "
            "with that saga's `status`"
        ),
        "headers": LOCATION,
    },
    202: {
        "description": "Started, or attached to the saga already running for it (`alreadyRunning`)",
        "headers": LOCATION,
    },
    401: UNAUTHENTICATED,
    403: FORBIDDEN,
    409: {"model": Refusal, "description": "The key was used with a different request"},
    413: TOO_LARGE,
    422: INVALID,
    503: UNAVAILABLE,
}


def build_router() -> APIRouter:
    """One start route per saga kind registered now (``create_app`` calls this)."""
    router = APIRouter(prefix="/v1", tags=["start"])
    for spec in KINDS:
        _add_start_route(router, spec)
    return router


def _add_start_route(router: APIRouter, spec: SagaKindSpec[Any]) -> None:
    async def start_saga(
        request: Request,
        response: Response,
        caller: Annotated[ApiKey, Depends(require(ApiScope.SAGAS_WRITE))],
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                description=IDEMPOTENCY_HEADER_HELP,
                json_schema_extra=idempotency.HEADER_KEY_SCHEMA,
            ),
        ] = None,
    ) -> SagaAccepted:
        key = None
        if idempotency_key is not None:
            problem = idempotency.header_key_problem(idempotency_key)
            if problem:
                raise InvalidRequest([FieldProblem(field="Idempotency-Key", rule=problem)])
            secret = orchestrator_settings(request).workflow_id_key.get_secret_value().encode()
            key = idempotency.header_key(secret, caller.name, idempotency_key)
        data = await json_object(request)
        return await start(request, response, spec, data, key)

    router.add_api_route(
        f"/{spec.api_path}",
        start_saga,
        methods=["POST"],
        status_code=202,
        response_model=SagaAccepted,
        responses=RESPONSES,
        summary=spec.title,
        operation_id=f"start_{spec.kind.lower()}",
        name=f"start_{spec.kind.lower()}",
        openapi_extra=request_body(spec.model.__name__),
    )
