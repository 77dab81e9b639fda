"""The one place where provider calls are logged and faults are injected.

:class:`ProviderGateway` is a pure ASGI middleware in front of all provider routes, so the
routes themselves know nothing about logging or faults.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.calls import CallLog, CallRecord, mask_secrets, query_dict
from sandbox.clock import format_ms
from sandbox.common import SandboxContext, parse_body
from sandbox.errors import ProviderError, ProviderName, ProviderProfile
from sandbox.faults import Fault, FaultRegistry

STN_PREFIX = "/stn"
AIRALO_PREFIX = "/airalo"
REBILLY_PREFIX = "/rebilly"
REBILLY_ORG_PREFIX = "/rebilly/organizations/"

_SIMPLE_PREFIXES: tuple[tuple[ProviderName, str], ...] = (
    ("stn", STN_PREFIX),
    ("airalo", AIRALO_PREFIX),
)

DROPPED_STATUS = 504
DROPPED_BODY = "upstream response lost"


def _strip(path: str, prefix: str) -> str | None:
    if path == prefix:
        return "/"
    if path.startswith(prefix + "/"):
        return path[len(prefix) :]
    return None


def resolve_provider(path: str) -> tuple[ProviderName, str] | None:
    """Map an absolute request path to ``(provider, path relative to its base URL)``.

    Rebilly's base URL includes the organization, so ``/rebilly/organizations/org/x`` is
    ``/x`` relative to it.
    """
    for name, prefix in _SIMPLE_PREFIXES:
        relative = _strip(path, prefix)
        if relative is not None:
            return name, relative
    if path.startswith(REBILLY_ORG_PREFIX):
        _org, _sep, rest = path[len(REBILLY_ORG_PREFIX) :].partition("/")
        return "rebilly", "/" + rest
    relative = _strip(path, REBILLY_PREFIX)
    return ("rebilly", relative) if relative is not None else None


async def _buffer_body(receive: Receive) -> tuple[bytes, Receive]:
    """Read the whole request body and return a ``receive`` that replays it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


class ProviderGateway:
    """ASGI middleware: call log + fault injection for every provider request."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        context: SandboxContext,
        calls: CallLog,
        faults: FaultRegistry,
        profiles: Mapping[ProviderName, ProviderProfile],
    ) -> None:
        self.app = app
        self.context = context
        self.calls = calls
        self.faults = faults
        self.profiles = profiles

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = resolve_provider(scope["path"]) if scope["type"] == "http" else None
        if target is None:
            await self.app(scope, receive, send)
            return
        provider, relative_path = target
        body, receive = await _buffer_body(receive)
        record = self._start_record(scope, provider, relative_path, body)
        # Matching and consuming a fault is synchronous: no await between them.
        fault = self.faults.take(provider, record.method, relative_path, self.context.rng)
        record.fault = fault.id if fault else None
        try:
            await self._dispatch(scope, receive, send, record, fault)
        except BaseException:
            record.status = record.status or 500
            raise
        finally:
            self.calls.append(record)

    def _start_record(
        self, scope: Scope, provider: ProviderName, path: str, body: bytes
    ) -> CallRecord:
        query_string = scope.get("query_string", b"").decode("latin-1")
        content_type = Headers(scope=scope).get("content-type")
        return CallRecord(
            seq=self.calls.next_seq(),
            at=format_ms(self.context.now()),
            provider=provider,
            method=scope["method"].upper(),
            path=path,
            query=query_dict(parse_qsl(query_string, keep_blank_values=True)),
            request_body=mask_secrets(parse_body(body, content_type)),
        )

    async def _dispatch(
        self, scope: Scope, receive: Receive, send: Send, record: CallRecord, fault: Fault | None
    ) -> None:
        mode = fault.spec.mode if fault else None
        if fault is not None and mode in ("error", "rate_limit"):
            response = self._refusal(fault, record.provider, scope["path"])
            record.status = response.status_code
            await response(scope, receive, send)
            return
        if fault is not None and mode == "latency":
            await asyncio.sleep(fault.spec.latency_seconds)
        status = await self._forward(scope, receive, send, drop=mode == "drop_response")
        record.applied = 200 <= status < 300
        record.status = status
        if mode == "drop_response":
            record.status = DROPPED_STATUS
            await PlainTextResponse(DROPPED_BODY, status_code=DROPPED_STATUS)(scope, receive, send)

    def _refusal(self, fault: Fault, provider: ProviderName, path: str) -> Response:
        """The response of an ``error`` or ``rate_limit`` fault; the request is not applied."""
        profile = self.profiles[provider]
        if fault.spec.mode == "rate_limit":
            return profile.rate_limited(fault.spec.retry_after_seconds, self.context.now(), path)
        if fault.spec.body is not None:
            # A provider-specific body, e.g. Airalo's business error {"code", "reason"}.
            return JSONResponse(fault.spec.body, status_code=fault.spec.status)
        error = ProviderError(status=fault.spec.status, message=f"Injected fault {fault.id}")
        return profile.render(error, path)

    async def _forward(self, scope: Scope, receive: Receive, send: Send, *, drop: bool) -> int:
        """Run the app; returns the status it produced. With ``drop`` the client gets nothing."""
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            if not drop:
                await send(message)

        await self.app(scope, receive, capture)
        return status
