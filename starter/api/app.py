"""``create_app``: the API's routes, authentication, limits and error answers."""

from __future__ import annotations

from fastapi import FastAPI

from config.settings import ApiSettings, OrchestratorSettings
from starter.api import errors, openapi
from starter.api.auth import Authenticator
from starter.api.gateway import TemporalGateway
from starter.api.limits import BodySizeLimit
from starter.api.routes import events, health, sagas, starts, webhooks


def create_app(
    api_settings: ApiSettings | None = None,
    orchestrator_settings: OrchestratorSettings | None = None,
    gateway: TemporalGateway | None = None,
) -> FastAPI:
    api_settings = api_settings or ApiSettings()
    app = FastAPI(title=openapi.TITLE, version=openapi.VERSION, description=openapi.DESCRIPTION)
    app.state.api_settings = api_settings
    app.state.orchestrator_settings = orchestrator_settings or OrchestratorSettings()
    app.state.authenticator = Authenticator(api_settings.keys)
    app.state.gateway = gateway or TemporalGateway(api_settings.temporal_timeout_seconds)
    for router in (starts.router, events.router, sagas.router, webhooks.router, health.router):
        app.include_router(router)
    errors.install(app, api_settings.retry_after_seconds)
    openapi.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=api_settings.max_body_bytes)
    return app
