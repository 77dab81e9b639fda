"""The codec server's HTTP app: ``/encode``, ``/decode``, the sign-in pages, ``/healthz``.

Bodies are the proto-JSON of ``temporal.api.common.v1.Payloads``
(``{"payloads": [{"metadata": {"encoding": "<base64>"}, "data": "<base64>"}]}``), as
the Temporal CLI and Web UI send them; the answer has the same shape. ``X-Namespace``
is accepted (one key set serves every namespace here). Without a valid bearer token
or session cookie: 401, and nothing about the configured tokens is said.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException, Request, status
from fastapi.responses import JSONResponse, Response
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from config.codec import CodecError, EncryptionCodec
from config.settings import CodecServerSettings
from starter.codec_server import login
from starter.codec_server.cors import UiOriginCors
from starter.codec_server.credentials import SESSION_COOKIE, Credentials

logger = logging.getLogger(__name__)


def create_app(settings: CodecServerSettings, codec: EncryptionCodec) -> FastAPI:
    app = FastAPI(
        title="cancellation-orchestrator codec server",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.codec = codec
    app.state.credentials = Credentials(settings.tokens, settings.session_hours * 3600)
    app.state.cookie_secure = settings.session_cookie_secure
    app.state.max_body_bytes = settings.max_body_bytes
    app.include_router(login.router)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/encode", dependencies=[Depends(authenticated)])
    async def encode(
        request: Request, payloads: Annotated[Payloads, Depends(read_payloads)]
    ) -> Response:
        codec: EncryptionCodec = request.app.state.codec
        return payloads_response(await codec.encode(payloads.payloads))

    @app.post("/decode", dependencies=[Depends(authenticated)])
    async def decode(
        request: Request, payloads: Annotated[Payloads, Depends(read_payloads)]
    ) -> Response:
        codec: EncryptionCodec = request.app.state.codec
        try:
            decoded = await codec.decode(payloads.payloads)
        except CodecError as error:
            logger.warning("decode refused: %s", error)  # key ids only, never data
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(error)) from None
        return payloads_response(decoded)

    # Outermost: a refused request (401, 413) still carries CORS headers for the UI.
    app.add_middleware(UiOriginCors, origins=settings.allowed_origins)
    return app


async def authenticated(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_namespace: Annotated[str | None, Header()] = None,
) -> None:
    """A configured bearer token or a live session cookie, else 401."""
    credentials: Credentials = request.app.state.credentials
    if credentials.bearer_ok(authorization):
        return
    if credentials.session_ok(request.cookies.get(SESSION_COOKIE)):
        return
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "credentials required: Authorization: Bearer <codec token>, or sign in at /login",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def read_payloads(request: Request) -> Payloads:
    limit: int = request.app.state.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body over {limit} bytes")
    body = await request.body()
    if len(body) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body over {limit} bytes")
    try:
        return json_format.Parse(body, Payloads(), ignore_unknown_fields=True)
    except (json_format.ParseError, UnicodeDecodeError) as error:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"body must be the JSON of temporal.api.common.v1.Payloads: {error}",
        ) from None


def payloads_response(payloads: Sequence[Payload]) -> Response:
    return JSONResponse(json_format.MessageToDict(Payloads(payloads=payloads)))
