"""Publishing outcome events: the subscription store as the worker reads it, and the
local activity that makes each event's first attempt, or leaves it to the outbox.

``outcomes.publish`` runs in the saga's own workflow task (a local activity: one
marker event, no task queue round trip). It reads the subscription store (a short
per-process cache, :class:`SubscriptionDirectory`) and, for each matching
subscription, POSTs the event itself (**inline**), its HTTP exchange bounded by
``CANCEL_WEBHOOK_INLINE_TIMEOUT_SECONDS`` (1 s): accepted, it is recorded in the
subscriber's outbox for the listing (``activities/outbox_signals.py``, in the
background); not, it is handed to a ``WebhookDelivery`` (:func:`start_delivery`) that
retries it on the webhooks lane, and the subscription is **paused** in this process
for :data:`INLINE_PAUSE` seconds: its next events are signalled to its outbox
(``SubscriberOutbox``), which attempts them in batches with the full timeout, so a
subscriber that is slow or down holds a saga's workflow task at most once per pause.
With the inline timeout 0, every event goes to the outbox.

Why inline first: a signal to the outbox cost the server an event and a share of the
outbox's workflow tasks, and the worker the outbox's activations, for every event;
with a subscription to every type the sagas' throughput fell to 0.82-0.85x of the same
without subscribers (``docs/performance.md``, section 8). The POST alone costs what it
must. A retried publish POSTs again (the same ``webhook-id``: receivers dedupe).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.outbox_signals import AttemptLog, enqueue
from domain import search_attributes as sa
from domain.outcomes import (
    PUBLISH_ACTIVITY,
    BatchAttempt,
    Delivery,
    OutboxDelivery,
    PublishRequest,
    PublishResult,
    Subscription,
    SubscriptionStoreQuery,
    delivery_workflow_id,
    subscriptions_workflow_id,
)

#: The delivery workflow's type (``workflows.webhook_delivery.WebhookDelivery``).
DELIVERY_WORKFLOW = "WebhookDelivery"
DELIVERY_EXECUTION_TIMEOUT = timedelta(days=4)


class SubscriptionDirectory:
    """The subscription stores as this worker process last read them, for ``ttl``
    seconds (0: read every time). Concurrent readers of a stale store share one query."""

    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._read: dict[str, tuple[float, list[Subscription]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def subscriptions(self, client: Client, store_id: str) -> list[Subscription]:
        cached = self._read.get(store_id)
        if cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        async with self._locks.setdefault(store_id, asyncio.Lock()):
            cached = self._read.get(store_id)
            if cached is not None and time.monotonic() - cached[0] < self._ttl:
                return cached[1]
            found = await _read_store(client.get_workflow_handle(store_id))
            self._read[store_id] = (time.monotonic(), found)
            return found

    def forget(self, store_id: str) -> None:
        """Read the store again next time (after this process changed it)."""
        self._read.pop(store_id, None)


async def _read_store(store: WorkflowHandle[object, object]) -> list[Subscription]:
    try:
        found: list[Subscription] = await store.query(
            SubscriptionStoreQuery.WITH_SECRETS, result_type=list[Subscription]
        )
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return []  # nobody ever subscribed on this task queue
        raise
    return found


#: Seconds a subscription's events go to its outbox after an inline attempt failed.
INLINE_PAUSE = 30.0


class FirstAttempts(Protocol):
    """``activities.webhooks.WebhookActivities``: a first attempt, handed over if it
    failed (a protocol: that module imports this one)."""

    async def first_attempt(
        self,
        client: Client,
        delivery: Delivery,
        task_queue: str,
        http_seconds: float | None = None,
    ) -> BatchAttempt: ...


class InlinePauses:
    """The subscriptions whose events this process leaves to their outboxes for now."""

    def __init__(
        self, seconds: float = INLINE_PAUSE, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._seconds = seconds
        self._clock = clock
        self._until: dict[str, float] = {}

    def paused(self, subscription_id: str) -> bool:
        until = self._until.get(subscription_id)
        if until is not None and self._clock() >= until:
            del self._until[subscription_id]
            return False
        return until is not None

    def pause(self, subscription_id: str) -> None:
        self._until[subscription_id] = self._clock() + self._seconds


class OutcomeActivities:
    """The publish local activity, bound to this worker's subscription directory, its
    first attempts (HTTP), the inline timeout and the log of inline attempts."""

    def __init__(
        self,
        directory: SubscriptionDirectory,
        attempts: FirstAttempts,
        log: AttemptLog,
        inline_seconds: float,
    ) -> None:
        self._directory = directory
        self._attempts = attempts
        self._log = log
        self._inline_seconds = inline_seconds
        self._pauses = InlinePauses()

    @activity.defn(name=PUBLISH_ACTIVITY)
    async def publish(self, request: PublishRequest) -> PublishResult:
        client = activity.client()
        store = subscriptions_workflow_id(request.task_queue)
        event = request.event
        matching = [
            subscription
            for subscription in await self._directory.subscriptions(client, store)
            if subscription.matches(event.type, request.kind, request.customer_id)
        ]
        if not matching:
            return PublishResult(matched=0, started=0)
        inline = await asyncio.gather(
            *(self._publish_to(client, request, store, subscription) for subscription in matching)
        )
        # ``started``: the subscriptions the event went to (the field's name is older).
        return PublishResult(matched=len(matching), started=len(matching), inline=sum(inline))

    async def _publish_to(
        self, client: Client, request: PublishRequest, store: str, subscription: Subscription
    ) -> bool:
        """The event's first attempt inline (``True``), or the event to the outbox."""
        if self._inline_seconds <= 0 or self._pauses.paused(subscription.id):
            await enqueue(client, request.task_queue, store, subscription.id, request.event)
            return False
        event = request.event
        delivery = Delivery(subscription_id=subscription.id, store_id=store, event=event)
        attempt = await self._attempts.first_attempt(
            client, delivery, request.task_queue, self._inline_seconds
        )
        if not attempt.delivered:
            self._pauses.pause(subscription.id)
        self._log.record(
            request.task_queue,
            store,
            subscription.id,
            OutboxDelivery(
                event_id=event.id,
                event_type=str(event.type),
                saga_id=event.subject,
                attempted_at=datetime.now(UTC),
                status=attempt.status,
                delivered=attempt.delivered,
                failure=attempt.failure,
                retried=attempt.retried,
            ),
        )
        return True


async def start_delivery(
    client: Client, delivery: Delivery, task_queue: str, *, replay: bool = False
) -> bool:
    """Start ``WebhookDelivery`` for ``delivery``; ``False`` if it exists already.

    Only a ``replay`` starts a delivery id again, and only one that ended failed: a
    retried batch must never send an event twice, even one the subscriber refused.
    """
    event = delivery.event
    if replay:  # attempted again from the first attempt, at once
        delivery = delivery.model_copy(update={"first_attempt": None})
    try:
        await client.start_workflow(
            DELIVERY_WORKFLOW,
            delivery,
            id=delivery_workflow_id(event.id, delivery.subscription_id),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
            if replay
            else WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=delivery_search_attributes(
                event.subject, delivery.subscription_id, event.type
            ),
            static_summary=f"{event.type} of {event.subject} to subscription "
            f"{delivery.subscription_id}" + (" (replayed)" if replay else ""),
            # The activity gives up after 72 hours; this only bounds a lost workflow.
            execution_timeout=DELIVERY_EXECUTION_TIMEOUT,
            # Its first task goes straight to this worker (no matching round trip).
            request_eager_start=True,
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


def delivery_search_attributes(
    saga_id: str, subscription_id: str, event_type: str
) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(sa.OUTCOME_SUBSCRIPTION_ID, subscription_id),
            SearchAttributePair(sa.OUTCOME_SAGA_ID, saga_id),
            SearchAttributePair(sa.OUTCOME_EVENT_TYPE, str(event_type)),
        ]
    )
