"""CORS for the Web UI's origin(s) only, with credentials.

The UI calls ``/decode`` from its own origin (e.g. ``http://127.0.0.1:8233``) with
``Content-Type: application/json`` and ``X-Namespace``, and with
``credentials: 'include'`` when "Include cross-origin credentials" is on, so the
browser sends a preflight first and then accepts the answer only with the exact
origin and ``Access-Control-Allow-Credentials: true``. An origin not listed gets
no CORS header at all (and a 403 preflight): its page cannot read an answer.
Starlette's ``CORSMiddleware`` answers a refused preflight with its other CORS
headers still set, hence this small one.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALLOWED_METHODS = "POST"
ALLOWED_HEADERS = "Authorization, Content-Type, X-Namespace"
PREFLIGHT_MAX_AGE_SECONDS = 600


class UiOriginCors:
    def __init__(self, app: ASGIApp, origins: Iterable[str]) -> None:
        self.app = app
        self.origins = frozenset(origin.rstrip("/") for origin in origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        allowed = origin is not None and origin in self.origins
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(origin if allowed else None, headers)(scope, receive, send)
            return
        if not allowed or origin is None:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                response_headers["Access-Control-Allow-Origin"] = origin
                response_headers["Access-Control-Allow-Credentials"] = "true"
                response_headers.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, send_with_cors)

    @staticmethod
    def _preflight(origin: str | None, request: Headers) -> Response:
        if origin is None:
            return PlainTextResponse("origin not allowed", status_code=403)
        headers = {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",
            "Access-Control-Allow-Methods": ALLOWED_METHODS,
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
            "Vary": "Origin",
        }
        # Chrome's Private Network Access asks before a page reaches a loopback server.
        if request.get("access-control-request-private-network") == "true":
            headers["Access-Control-Allow-Private-Network"] = "true"
        return Response(status_code=204, headers=headers)
