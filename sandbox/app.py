"""The sandbox application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from sandbox import airalo, rebilly, stn, subscriber
from sandbox.admin import build_admin_router
from sandbox.clock import Clock, utc_now
from sandbox.common import SandboxContext
from sandbox.errors import ProviderError, ProviderName, ProviderProfile, status_phrase
from sandbox.gateway import (
    AIRALO_PREFIX,
    REBILLY_ORG_PREFIX,
    STN_PREFIX,
    ProviderGateway,
    resolve_provider,
)
from sandbox.persistence import PersistState, StateFile
from sandbox.settings import SandboxSettings
from sandbox.state import Sandbox
from sandbox.webhooks import build_admin_router as build_webhooks_router

ADMIN_PREFIX = "/_sandbox"
#: Outcome-event subscriber endpoints: ``<sandbox>/subscriber/<name>``.
SUBSCRIBER_PREFIX = "/subscriber"
logger = logging.getLogger(__name__)

PROFILES: Mapping[ProviderName, ProviderProfile] = {
    "stn": stn.PROFILE,
    "rebilly": rebilly.PROFILE,
    "airalo": airalo.PROFILE,
}


def create_app(settings: SandboxSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """A fresh sandbox with its own state; ``clock`` replaces the UTC wall clock.

    With ``settings.state_file`` the provider state is loaded from that file (if it exists;
    :class:`sandbox.persistence.StateFileError` if it is unreadable) and saved back to it.
    """
    context = SandboxContext(settings=settings or SandboxSettings(), clock=clock or utc_now)
    sandbox = Sandbox.create(context)
    path = context.settings.state_file
    state_file = StateFile(Path(path)) if path else None
    if state_file is not None:
        state_file.load(sandbox)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        ticker = asyncio.create_task(_tick_forever(sandbox), name="sandbox-ticker")
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            sandbox.webhooks.close()
            if state_file is not None:
                state_file.save(sandbox)

    app = FastAPI(title="Provider sandbox", version="1.0", lifespan=lifespan)
    app.state.sandbox = sandbox

    app.include_router(stn.build_router(sandbox.stn), prefix=STN_PREFIX, tags=["sTN"])
    app.include_router(
        rebilly.build_router(sandbox.rebilly),
        prefix=REBILLY_ORG_PREFIX + "{organizationId}",
        tags=["Rebilly"],
    )
    app.include_router(airalo.build_router(sandbox.airalo), prefix=AIRALO_PREFIX, tags=["Airalo"])
    app.include_router(build_admin_router(sandbox), prefix=ADMIN_PREFIX, tags=["sandbox"])
    app.include_router(stn.build_admin_router(sandbox.stn), prefix=f"{ADMIN_PREFIX}/stn")
    app.include_router(
        rebilly.build_admin_router(sandbox.rebilly), prefix=f"{ADMIN_PREFIX}/rebilly"
    )
    app.include_router(airalo.build_admin_router(sandbox.airalo), prefix=f"{ADMIN_PREFIX}/airalo")
    app.include_router(build_webhooks_router(sandbox.webhooks), prefix=f"{ADMIN_PREFIX}/webhooks")
    app.include_router(
        subscriber.build_router(sandbox.subscribers), prefix=SUBSCRIBER_PREFIX, tags=["subscriber"]
    )
    app.include_router(
        subscriber.build_admin_router(sandbox.subscribers), prefix=f"{ADMIN_PREFIX}/subscribers"
    )

    app.add_exception_handler(ProviderError, _provider_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_middleware(
        ProviderGateway,
        context=context,
        calls=sandbox.calls,
        faults=sandbox.faults,
        profiles=PROFILES,
    )
    if state_file is not None:
        app.add_middleware(PersistState, state_file=state_file, sandbox=sandbox)
    return app


IDLE_TICK_SECONDS = 0.5


async def _tick_forever(sandbox: Sandbox) -> None:
    """While served: evaluate due firings and churns every ``webhook_tick_seconds``, so their
    webhooks go out without anyone reading (0 disables it; the setting is re-read each time)."""
    while True:
        interval = sandbox.context.settings.webhook_tick_seconds
        await asyncio.sleep(interval if interval > 0 else IDLE_TICK_SECONDS)
        if interval > 0:
            try:
                sandbox.tick()
            except Exception:  # keep ticking; one bad evaluation must not stop the webhooks
                logger.exception("sandbox tick failed")


def _render(request: Request, error: ProviderError) -> Response:
    target = resolve_provider(request.url.path)
    if target is None:
        return JSONResponse({"detail": error.message}, status_code=error.status)
    return PROFILES[target[0]].render(error, request.url.path)


async def _provider_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProviderError)
    return _render(request, exc)


async def _http_error_handler(request: Request, exc: Exception) -> Response:
    """Unknown routes and wrong methods under a provider prefix get that provider's shape."""
    assert isinstance(exc, StarletteHTTPException)
    if resolve_provider(request.url.path) is None:
        return await http_exception_handler(request, exc)
    error = ProviderError(
        status=exc.status_code,
        message=status_phrase(exc.status_code),
        headers=dict(exc.headers or {}),
    )
    return _render(request, error)
