"""How failures become HTTP answers.

| what                                          | status | body                                 |
|-----------------------------------------------|--------|--------------------------------------|
| a broken rule (``InvalidRequest``), bad JSON  | 422    | ``{"detail": [{"field", "rule"}]}``  |
| unknown workflow                              | 404    | ``{"detail": "..."}``                |
| the saga refused (update failed), closed run, | 409    | ``{"detail": "..."}``                |
| idempotency key reused with another request   |        |                                      |
| Temporal unreachable or overloaded; a saga    | 503    | ``{"detail": "..."}`` + Retry-After  |
| whose worker did not answer its status in time|        |                                      |

Error texts never quote the request body (it may hold a phone number).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.routing import Match
from temporalio.client import (
    RPCTimeoutOrCancelledError,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from domain.common import FieldProblem, InvalidRequest
from starter.api.gateway import TemporalUnavailable
from starter.api.routes.common import matchable
from starter.sagas import DeliveryConflict, SagaBusy, SagaClosed, SagaNotFound

log = logging.getLogger(__name__)

_UNAVAILABLE = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.ABORTED,
        RPCStatusCode.UNKNOWN,
        RPCStatusCode.INTERNAL,
    }
)


class ApiError(Exception):
    """An answer decided by the API itself (404 unknown saga, 409 closed run, ...)."""

    def __init__(self, status_code: int, detail: str) -> None:
        self.status_code = status_code
        self.detail = detail
        super().__init__(detail)


def invalid(problems: list[FieldProblem]) -> JSONResponse:
    return JSONResponse(
        {"detail": [problem.model_dump() for problem in problems]},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


def refusal(status_code: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status_code, headers=headers)


def _location(loc: tuple[Any, ...]) -> str:
    """``("body", "wishDate")`` → ``wishDate``; ``("header", "Idempotency-Key")`` → the header."""
    parts = [str(part) for part in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:]
    return ".".join(parts) or "request"


def allowed_methods(request: Request) -> list[str]:
    """Every method some route takes at the request's path (``Allow`` of a 405).

    Starlette's 405 names the methods of the first route at the path only: two routes
    at one path (``HEAD`` and ``POST /v1/webhooks/airalo``) would each hide the other.
    """
    methods: set[str] = set()
    for route in matchable(request.app.routes):
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def install(app: FastAPI, retry_after_seconds: int) -> None:
    retry_after = {"Retry-After": str(retry_after_seconds)}

    async def on_invalid(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, InvalidRequest)
        return invalid(error.problems)

    async def on_validation(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        return invalid(
            [
                FieldProblem(
                    field=_location(tuple(item.get("loc", ()))),
                    rule=str(item.get("msg", "invalid")).removeprefix("Value error, "),
                )
                for item in error.errors()
            ]
        )

    async def on_http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        if error.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
            error.headers = {**(error.headers or {}), "Allow": ", ".join(allowed_methods(request))}
        return await http_exception_handler(request, error)

    async def on_api_error(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ApiError)
        return refusal(error.status_code, error.detail)

    async def on_conflict(_: Request, error: Exception) -> JSONResponse:
        return refusal(status.HTTP_409_CONFLICT, str(error))

    async def on_not_found(_: Request, error: Exception) -> JSONResponse:
        return refusal(status.HTTP_404_NOT_FOUND, str(error))

    async def on_update_failed(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, WorkflowUpdateFailedError)
        cause = error.cause
        reason = getattr(cause, "message", None) or str(cause)
        return refusal(status.HTTP_409_CONFLICT, f"refused by the saga: {reason}")

    async def on_query_failed(_: Request, error: Exception) -> JSONResponse:
        return refusal(status.HTTP_409_CONFLICT, f"the saga did not answer its status: {error}")

    async def on_busy(_: Request, error: Exception) -> JSONResponse:
        return refusal(status.HTTP_503_SERVICE_UNAVAILABLE, str(error), retry_after)

    async def on_unavailable(_: Request, error: Exception) -> JSONResponse:
        log.warning("Temporal unavailable: %s", error)
        return refusal(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "Temporal is unavailable; nothing was started or changed, retry later",
            retry_after,
        )

    async def on_rpc_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RPCError)
        if error.status == RPCStatusCode.NOT_FOUND:
            if "already completed" in error.message:
                return refusal(status.HTTP_409_CONFLICT, "the saga's run is closed")
            return refusal(status.HTTP_404_NOT_FOUND, f"not found: {error.message}")
        if error.status == RPCStatusCode.INVALID_ARGUMENT:
            return invalid([FieldProblem(field="request", rule=error.message)])
        if error.status in {RPCStatusCode.ALREADY_EXISTS, RPCStatusCode.FAILED_PRECONDITION}:
            return refusal(status.HTTP_409_CONFLICT, error.message)
        if error.status not in _UNAVAILABLE:
            log.error("Temporal refused %s %s: %s", request.method, request.url.path, error)
        return await on_unavailable(request, error)

    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(InvalidRequest, on_invalid)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(DeliveryConflict, on_conflict)
    # A steering request for a saga that is not running: nothing to steer.
    app.add_exception_handler(SagaNotFound, on_not_found)
    app.add_exception_handler(SagaClosed, on_conflict)
    app.add_exception_handler(SagaBusy, on_busy)
    app.add_exception_handler(WorkflowUpdateFailedError, on_update_failed)
    app.add_exception_handler(WorkflowQueryFailedError, on_query_failed)
    app.add_exception_handler(WorkflowQueryRejectedError, on_query_failed)
    app.add_exception_handler(TemporalUnavailable, on_unavailable)
    app.add_exception_handler(RPCTimeoutOrCancelledError, on_unavailable)
    app.add_exception_handler(RPCError, on_rpc_error)
