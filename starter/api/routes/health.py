"""Liveness and readiness, without authentication (they reveal nothing)."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse

from starter.api.errors import refusal
from starter.api.gateway import TemporalGateway
from starter.api.models import Health
from starter.api.routes.common import UNAVAILABLE

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: {**UNAVAILABLE, "description": "Temporal is not reachable"}},
    summary="Temporal answers within a short timeout",
)
async def readyz(request: Request) -> Health | JSONResponse:
    gateway: TemporalGateway = request.app.state.gateway
    if await gateway.ready():
        return Health(status="ready")
    retry_after = str(request.app.state.api_settings.retry_after_seconds)
    return refusal(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "Temporal is not reachable",
        {"Retry-After": retry_after},
    )
