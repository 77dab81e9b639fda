"""A webhook subscriber for the outcome events: checks, records, and fails on command.

``POST /subscriber/{name}`` is an endpoint a subscription can point at, one per
``name`` (tests keep apart by name on a shared sandbox). Every request is checked with
the ``standardwebhooks`` library against the secrets the endpoint was given and
recorded (headers, parsed body, whether the signature verified, what it answered).
An unverified request is answered 401. The admin API under ``/_sandbox/subscribers``
configures an endpoint (its secrets; answer ``failStatus`` to the next ``failCount``
requests or for ``failForSeconds``; answer 410 from now on with ``gone``; wait
``delaySeconds`` before answering) and reads what it received: ``attempts`` (every
request) and ``events`` (the distinct ``webhook-id`` answered 2xx, first attempt
first: the receiver's dedupe).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from standardwebhooks import Webhook, WebhookVerificationError

from sandbox.clock import format_ms, utc_now


class EndpointConfig(BaseModel):
    """How one subscriber endpoint behaves (camelCase on the wire)."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True)

    secrets: list[str] = Field(default_factory=list)
    fail_status: int = Field(default=503, ge=400, le=599)
    fail_count: int = Field(default=0, ge=0)
    fail_for_seconds: float = Field(default=0.0, ge=0)
    gone: bool = False
    delay_seconds: float = Field(default=0.0, ge=0, le=60)
    retry_after_seconds: int | None = Field(default=None, ge=0)


@dataclass
class Endpoint:
    config: EndpointConfig = field(default_factory=EndpointConfig)
    failing_until: float = 0.0
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def configure(self, config: EndpointConfig) -> None:
        self.config = config
        self.failing_until = time.monotonic() + config.fail_for_seconds

    def answer(self, verified: bool) -> int:
        config = self.config
        if not verified:
            return 401
        if config.gone:
            return 410
        if config.fail_count > 0:
            config.fail_count -= 1
            return config.fail_status
        if time.monotonic() < self.failing_until:
            return config.fail_status
        return 204

    def events(self) -> list[dict[str, Any]]:
        """One entry per ``webhook-id`` answered 2xx: what a deduping receiver keeps."""
        seen: dict[str, dict[str, Any]] = {}
        for attempt in self.attempts:
            if 200 <= attempt["status"] < 300 and attempt["webhookId"] not in seen:
                seen[attempt["webhookId"]] = attempt
        return list(seen.values())


class PersistedEndpoint(BaseModel):
    config: EndpointConfig
    #: Without the bodies (``body``, ``raw``): what the checks and a restart need.
    attempts: list[dict[str, Any]]


class SubscribersState(BaseModel):
    """The endpoints as the sandbox's state file keeps them (``sandbox/persistence.py``):
    a restarted sandbox still checks the same secrets and still knows what it received."""

    endpoints: dict[str, PersistedEndpoint] = Field(default_factory=dict)


_BODIES = ("body", "raw")


@dataclass
class Subscribers:
    """Every endpoint of one sandbox (``Sandbox.subscribers``)."""

    endpoints: dict[str, Endpoint] = field(default_factory=dict)

    def endpoint(self, name: str) -> Endpoint:
        return self.endpoints.setdefault(name, Endpoint())

    def reset(self) -> None:
        self.endpoints.clear()

    def snapshot(self) -> SubscribersState:
        return SubscribersState(
            endpoints={
                name: PersistedEndpoint(
                    config=endpoint.config,
                    attempts=[
                        {k: v for k, v in attempt.items() if k not in _BODIES}
                        for attempt in endpoint.attempts
                    ],
                )
                for name, endpoint in self.endpoints.items()
            }
        )

    def restore(self, state: SubscribersState) -> None:
        self.endpoints = {
            name: Endpoint(config=persisted.config, attempts=list(persisted.attempts))
            for name, persisted in state.endpoints.items()
        }


def _verified(secrets: list[str], body: bytes, headers: dict[str, str]) -> bool:
    for secret in secrets:
        try:
            Webhook(secret).verify(body, headers)
            return True
        except WebhookVerificationError:
            continue
    return False


def build_router(subscribers: Subscribers) -> APIRouter:
    """Mounted at ``/subscriber``."""
    router = APIRouter()

    @router.post("/{name}")
    async def receive(name: str, request: Request) -> Response:
        endpoint = subscribers.endpoint(name)
        body = await request.body()
        headers = dict(request.headers)
        verified = _verified(endpoint.config.secrets, body, headers)
        try:
            parsed: Any = json.loads(body)
        except ValueError:
            parsed = None
        status = endpoint.answer(verified)
        event = parsed if isinstance(parsed, dict) else {}
        endpoint.attempts.append(
            {
                "webhookId": headers.get("webhook-id"),
                "type": event.get("type"),
                "subject": event.get("subject"),
                "timestamp": headers.get("webhook-timestamp"),
                "signatures": (headers.get("webhook-signature") or "").split(),
                "contentType": headers.get("content-type"),
                "verified": verified,
                "status": status,
                "receivedAt": format_ms(utc_now()),
                "receivedAtEpoch": time.time(),
                "body": parsed,
                "raw": body.decode(errors="replace"),
            }
        )
        if endpoint.config.delay_seconds:
            await asyncio.sleep(endpoint.config.delay_seconds)  # a slow subscriber, on command
        answer_headers = {}
        if status == 429 and endpoint.config.retry_after_seconds is not None:
            answer_headers["Retry-After"] = str(endpoint.config.retry_after_seconds)
        return Response(status_code=status, headers=answer_headers)

    return router


def build_admin_router(subscribers: Subscribers) -> APIRouter:
    """Mounted at ``/_sandbox/subscribers``."""
    router = APIRouter()

    @router.put("/{name}")
    async def configure(name: str, config: EndpointConfig) -> dict[str, Any]:
        subscribers.endpoint(name).configure(config)
        return config.model_dump(by_alias=True, exclude={"secrets"})

    @router.get("/{name}")
    async def received(name: str) -> dict[str, Any]:
        endpoint = subscribers.endpoint(name)
        return {"attempts": endpoint.attempts, "events": endpoint.events()}

    @router.delete("/{name}")
    async def forget(name: str) -> dict[str, Any]:
        subscribers.endpoints.pop(name, None)
        return {"attempts": [], "events": []}

    return router
