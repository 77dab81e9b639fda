"""``webhooks.deliver``: one attempt to POST one outcome event to one subscriber; and
``webhooks.deliver_batch``, the subscriber outbox's local activity: the first attempt
of each event of a batch, an event not accepted handed to its ``WebhookDelivery``.

Signed the Standard Webhooks way with the maintained ``standardwebhooks`` library:
``webhook-id`` is the event id (the same on every attempt and replay, so receivers
dedupe by it), ``webhook-timestamp`` the attempt's time, ``webhook-signature`` one
``v1,<base64>`` per valid secret (two, space-separated, while a rotation overlaps).
The body is the CloudEvent in structured JSON (``application/cloudevents+json``).

What an answer means for the delivery (``workflows/webhook_delivery.py`` retries):
2xx delivered; 5xx, 408, 429 (after its ``Retry-After``), timeouts and connection
errors retried; 410 disables the subscription (an update to the store) and ends the
delivery; any other status (redirects are not followed) ends it failed. The
subscription is read from the store at every attempt (cached briefly), so a removed,
disabled or rotated subscription is honoured by deliveries already under way.

In production the destination is checked at every attempt, after DNS: loopback,
link-local and private addresses are refused (no SSRF through a subscription whose
name now resolves inward). The check and the connection resolve separately, so a
name that changes between the two in that instant is not caught.
"""

from __future__ import annotations

import asyncio
import math
import socket
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
from standardwebhooks import Webhook
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.outcomes import SubscriptionDirectory, start_delivery
from activities.provider_http import retry_after
from config.settings import Environment, WebhookSettings
from domain.outcomes import (
    DELIVER_ACTIVITY,
    DELIVER_BATCH_ACTIVITY,
    DESTINATION_REFUSED,
    SUBSCRIBER_GONE,
    SUBSCRIBER_REFUSED,
    SUBSCRIPTION_INACTIVE,
    BatchAttempt,
    BatchResult,
    Delivery,
    DeliveryBatch,
    DeliveryResult,
    DisableSubscription,
    FirstAttempt,
    OutcomeEvent,
    Subscription,
    SubscriptionStoreUpdate,
    SubscriptionView,
    address_refusal,
)

SUBSCRIBER_UNAVAILABLE = "SubscriberUnavailable"
#: POSTs of one outbox batch under way at once (each bounded by the HTTP timeout).
BATCH_CONCURRENCY = 10
#: First attempts after which the subscription receives nothing more.
ENDS_SUBSCRIPTION = (SUBSCRIPTION_INACTIVE, SUBSCRIBER_GONE)
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
USER_AGENT = "cancellation-orchestrator-webhooks/1"


async def destination_refusal(url: str) -> str | None:
    """Why production must not POST to ``url`` (its host resolves to a loopback,
    link-local, private or otherwise internal address), or ``None``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        resolved = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        return f"{host} does not resolve: {error}"
    for *_, address in resolved:
        refusal = address_refusal(str(address[0]))
        if refusal is not None:
            return f"{host}: {refusal}"
    return None


def signed_headers(
    event: OutcomeEvent, body: str, secrets: list[str], now: datetime
) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt: a signature per valid secret."""
    signatures = " ".join(Webhook(secret).sign(event.id, now, body) for secret in secrets)
    return {
        "content-type": CONTENT_TYPE,
        "user-agent": USER_AGENT,
        "webhook-id": event.id,
        "webhook-timestamp": str(math.floor(now.timestamp())),
        "webhook-signature": signatures,
    }


def first_attempt_of(failed: ApplicationError) -> FirstAttempt:
    """What a ``WebhookDelivery`` needs to know of a failed first attempt."""
    delay = failed.next_retry_delay
    return FirstAttempt(
        failure=failed.message,
        failure_type=failed.type or SUBSCRIBER_UNAVAILABLE,
        retried=not failed.non_retryable,
        retry_after_seconds=delay.total_seconds() if delay else None,
    )


class WebhookActivities:
    """The deliver activity with this worker's HTTP client and subscription directory."""

    def __init__(
        self,
        directory: SubscriptionDirectory,
        settings: WebhookSettings,
        environment: Environment,
    ) -> None:
        self._directory = directory
        self._environment = environment
        # No redirects (a 3xx is a refusal) and no connection reuse across subscribers'
        # hosts is needed: one client per worker process, closed with it.
        self.http = httpx.AsyncClient(timeout=settings.timeout_seconds, follow_redirects=False)

    async def aclose(self) -> None:
        await self.http.aclose()

    @activity.defn(name=DELIVER_ACTIVITY)
    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        return await self._attempt(activity.client(), delivery, activity.info().attempt)

    @activity.defn(name=DELIVER_BATCH_ACTIVITY)
    async def deliver_batch(self, batch: DeliveryBatch) -> BatchResult:
        """The outbox's first attempts (``workflows/subscriber_outbox.py``): every event
        POSTed, at most :data:`BATCH_CONCURRENCY` at a time; each one not accepted is
        handed to its ``WebhookDelivery`` with how its first attempt went."""
        client = activity.client()
        slots = asyncio.Semaphore(BATCH_CONCURRENCY)

        async def attempted(event: OutcomeEvent) -> BatchAttempt:
            delivery = Delivery(
                subscription_id=batch.subscription_id, store_id=batch.store_id, event=event
            )
            async with slots:
                return await self.first_attempt(client, delivery, batch.task_queue)

        attempts = await asyncio.gather(*(attempted(event) for event in batch.events))
        inactive = any(a.failure_type in ENDS_SUBSCRIPTION for a in attempts)
        return BatchResult(attempts=list(attempts), inactive=inactive)

    async def first_attempt(
        self,
        client: Client,
        delivery: Delivery,
        task_queue: str,
        http_seconds: float | None = None,
    ) -> BatchAttempt:
        """The first POST of ``delivery`` (its HTTP exchange bounded by ``http_seconds``
        if given, else by the configured timeout); if not accepted, handed to its
        ``WebhookDelivery`` with how it went. Made by an outbox's batch, or inline by a
        publish (``activities/outcomes.py``)."""
        try:
            delivered = await self._attempt(client, delivery, 1, http_seconds)
        except ApplicationError as failed:
            first = first_attempt_of(failed)
            handed = delivery.model_copy(update={"first_attempt": first})
            await start_delivery(client, handed, task_queue)
            return BatchAttempt(
                event_id=delivery.event.id,
                delivered=False,
                failure=first.failure,
                failure_type=first.failure_type,
                retried=first.retried,
            )
        return BatchAttempt(event_id=delivery.event.id, status=delivered.status, delivered=True)

    async def _attempt(
        self, client: Client, delivery: Delivery, attempt: int, http_seconds: float | None = None
    ) -> DeliveryResult:
        """One POST of ``delivery``: its result, or the ``ApplicationError`` that says
        whether it is retried (see the module docstring)."""
        subscription = await self._subscription(client, delivery)
        if self._environment == Environment.PRODUCTION:
            refusal = await destination_refusal(subscription.url)
            if refusal is not None:
                raise ApplicationError(refusal, type=DESTINATION_REFUSED, non_retryable=True)
        event = delivery.event
        body = event.body()
        now = datetime.now(UTC)
        headers = signed_headers(event, body, subscription.signing_secrets(now), now)
        try:
            async with self.http.stream(
                "POST",
                subscription.url,
                content=body.encode(),
                headers=headers,
                timeout=httpx.USE_CLIENT_DEFAULT if http_seconds is None else http_seconds,
            ) as response:
                status = response.status_code  # the body is never read: any size, any speed
                delay = retry_after(response) if status == 429 else None
        except httpx.HTTPError as error:
            raise ApplicationError(
                f"subscriber unreachable: {type(error).__name__}: {error}",
                type=SUBSCRIBER_UNAVAILABLE,
            ) from None
        if 200 <= status < 300:
            return DeliveryResult(status=status, attempt=attempt)
        if status == 410:
            await self._disable(client, delivery, "the subscriber answered 410 Gone")
            raise ApplicationError(
                "the subscriber answered 410 Gone: subscription disabled",
                type=SUBSCRIBER_GONE,
                non_retryable=True,
            )
        if status >= 500 or status in (408, 429):
            raise ApplicationError(
                f"the subscriber answered {status}",
                type=SUBSCRIBER_UNAVAILABLE,
                next_retry_delay=timedelta(seconds=math.ceil(delay.total_seconds()))
                if delay
                else None,
            )
        raise ApplicationError(
            f"the subscriber answered {status}: not retried (replay it once fixed)",
            type=SUBSCRIBER_REFUSED,
            non_retryable=True,
        )

    async def _subscription(self, client: Client, delivery: Delivery) -> Subscription:
        found = await self._find(client, delivery)
        if found is None:  # added after this process last read the store? read it again
            self._directory.forget(delivery.store_id)
            found = await self._find(client, delivery)
        if found is None:
            raise ApplicationError(
                f"subscription {delivery.subscription_id} was removed",
                type=SUBSCRIPTION_INACTIVE,
                non_retryable=True,
            )
        if found.disabled is not None:
            raise ApplicationError(
                f"subscription {found.id} is disabled: {found.disabled}",
                type=SUBSCRIPTION_INACTIVE,
                non_retryable=True,
            )
        return found

    async def _find(self, client: Client, delivery: Delivery) -> Subscription | None:
        subscriptions = await self._directory.subscriptions(client, delivery.store_id)
        return next((s for s in subscriptions if s.id == delivery.subscription_id), None)

    async def _disable(self, client: Client, delivery: Delivery, reason: str) -> None:
        await client.get_workflow_handle(delivery.store_id).execute_update(
            SubscriptionStoreUpdate.DISABLE,
            DisableSubscription(subscription_id=delivery.subscription_id, reason=reason),
            result_type=SubscriptionView,
        )
        self._directory.forget(delivery.store_id)
