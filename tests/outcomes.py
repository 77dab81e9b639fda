"""Outcome events in tests: a subscription pointed at the sandbox's subscriber endpoint,
and what that endpoint received (``sandbox/subscriber.py``)."""

from __future__ import annotations

import base64
import os
from typing import Any

from standardwebhooks import Webhook
from temporalio.client import Client

from config.settings import Environment
from domain.outcomes import OutcomeEventType, SubscriptionRequest, SubscriptionView
from sandbox.testing import SandboxAdmin
from starter import outcomes
from tests.helpers import eventually


def phone_number(uid: str) -> str:
    """A line of the test's own (a phone number's workflow id is the line's, so tests
    that reused one would find each other's completed sagas)."""
    return f"06{int(uid, 16) % 10**8:08d}"


def phone_forms(number: str) -> tuple[str, ...]:
    """Every way ``number`` (06XXXXXXXX) could appear in clear."""
    digits = number[2:]
    return (number, f"06-{digits}", f"+316{digits}", f"316{digits}", digits)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


async def subscribe(
    client: Client,
    task_queue: str,
    admin: SandboxAdmin,
    endpoint: str,
    *,
    types: list[OutcomeEventType] | None = None,
    secret: str | None = None,
    **endpoint_config: Any,
) -> tuple[SubscriptionView, str]:
    """A subscription (every type by default) to the subscriber ``endpoint``, which checks
    signatures with the same secret; ``endpoint_config``: how it answers."""
    secret = secret or new_secret()
    admin.configure_subscriber(endpoint, secrets=[secret], **endpoint_config)
    request = SubscriptionRequest(
        url=admin.subscriber_url(endpoint), secret=secret, types=types or list(OutcomeEventType)
    )
    view = await outcomes.add_subscription(client, task_queue, request, Environment.DEVELOPMENT)
    return view, secret


def events(admin: SandboxAdmin, endpoint: str) -> list[dict[str, Any]]:
    """The CloudEvents the endpoint accepted, deduped by webhook-id, in arrival order."""
    return [event["body"] for event in admin.subscriber_received(endpoint)["events"]]


async def wait_for_types(
    admin: SandboxAdmin, endpoint: str, count: int, within: float = 30.0
) -> list[dict[str, Any]]:
    """The endpoint's events once it accepted ``count`` of them, ordered by sequence."""

    async def arrived() -> list[dict[str, Any]]:
        received = events(admin, endpoint)
        assert len(received) >= count, [e["type"] for e in received]
        return received

    received = await eventually(arrived, within=within)
    return sorted(received, key=lambda event: event["data"]["sequence"])


def verify(attempt: dict[str, Any], secret: str) -> None:
    """Check one recorded attempt's signature with the library, as a receiver would."""
    headers = {
        "webhook-id": attempt["webhookId"],
        "webhook-timestamp": attempt["timestamp"],
        "webhook-signature": " ".join(attempt["signatures"]),
    }
    Webhook(secret).verify(attempt["raw"], headers)
