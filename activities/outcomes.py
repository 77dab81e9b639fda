"""Publishing outcome events: the subscription store as the worker reads it, and the
local activity that starts one delivery per matching subscription.

``outcomes.publish`` runs in the saga's own workflow task (a local activity: one
marker event, no task queue round trip). It does no HTTP: it reads the subscription
store (a short per-process cache, :class:`SubscriptionDirectory`) and signals the event
to each matching subscription's outbox (``SubscriberOutbox``, id
``outbox-<subscription id>``, started by the signal if it is not running), which makes
the first attempts in batches and hands what fails to a ``WebhookDelivery``
(:func:`start_delivery`). A retried attempt signals again; the outbox drops the repeat.
With no matching subscription it returns at once.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from domain import search_attributes as sa
from domain.outcomes import (
    OUTBOX_ENQUEUE,
    PUBLISH_ACTIVITY,
    Delivery,
    OutboxState,
    PublishRequest,
    PublishResult,
    Subscription,
    SubscriptionStoreQuery,
    delivery_workflow_id,
    outbox_workflow_id,
    subscriptions_workflow_id,
)

#: The delivery workflow's type (``workflows.webhook_delivery.WebhookDelivery``).
DELIVERY_WORKFLOW = "WebhookDelivery"
#: A subscriber's outbox (``workflows.subscriber_outbox.SubscriberOutbox``).
OUTBOX_WORKFLOW = "SubscriberOutbox"
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


class OutcomeActivities:
    """The publish local activity, bound to this worker's :class:`SubscriptionDirectory`."""

    def __init__(self, directory: SubscriptionDirectory) -> None:
        self._directory = directory

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
        await asyncio.gather(
            *(_enqueue(client, request, store, subscription) for subscription in matching)
        )
        # ``started``: the outboxes the event went to (the field's name is older).
        return PublishResult(matched=len(matching), started=len(matching))


async def _enqueue(
    client: Client, request: PublishRequest, store: str, subscription: Subscription
) -> None:
    """Signal the event to the subscriber's outbox, starting it if it is not running
    (a retried attempt signals it again; the outbox drops the repeat)."""
    await client.start_workflow(
        OUTBOX_WORKFLOW,
        OutboxState(subscription_id=subscription.id, store_id=store),
        id=outbox_workflow_id(subscription.id),
        task_queue=request.task_queue,
        start_signal=OUTBOX_ENQUEUE,
        start_signal_args=[request.event],
        search_attributes=TypedSearchAttributes(
            [SearchAttributePair(sa.OUTCOME_SUBSCRIPTION_ID, subscription.id)]
        ),
        static_summary=f"Outbox of subscription {subscription.id}",
    )


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
