"""What a worker process tells a subscriber's outbox (``SubscriberOutbox``, id
``outbox-<subscription id>``): an event for it to attempt (:func:`enqueue`), and the
first attempts publishes made inline (:class:`AttemptLog`), for its recent deliveries.

Both are signal-with-start: the first signal starts the outbox. An event is signalled
before the publish returns (durable: the outbox holds it). An inline attempt's record is
not needed for delivery, only for ``GET /v1/subscriptions/{id}/deliveries``: records
wait up to :data:`RECORD_EVERY` seconds in the process and go to the outbox as one
signal, in the background. So a busy subscription costs its outbox one signal a second
per worker process, not one per event; a process that stops or dies loses at most that
second's lines of the listing, never an event.
"""

from __future__ import annotations

import asyncio
import logging

from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from domain import search_attributes as sa
from domain.outcomes import (
    OUTBOX_ENQUEUE,
    OUTBOX_RECORD,
    OutboxDelivery,
    OutboxState,
    OutcomeEvent,
    outbox_workflow_id,
)

#: A subscriber's outbox (``workflows.subscriber_outbox.SubscriberOutbox``).
OUTBOX_WORKFLOW = "SubscriberOutbox"
#: Seconds an inline attempt's record waits for others to the same outbox.
RECORD_EVERY = 1.0

log = logging.getLogger(__name__)


async def _signal(
    client: Client,
    task_queue: str,
    store: str,
    subscription_id: str,
    signal: str,
    argument: OutcomeEvent | list[OutboxDelivery],
) -> None:
    await client.start_workflow(
        OUTBOX_WORKFLOW,
        OutboxState(subscription_id=subscription_id, store_id=store),
        id=outbox_workflow_id(subscription_id),
        task_queue=task_queue,
        start_signal=signal,
        start_signal_args=[argument],
        search_attributes=TypedSearchAttributes(
            [SearchAttributePair(sa.OUTCOME_SUBSCRIPTION_ID, subscription_id)]
        ),
        static_summary=f"Outbox of subscription {subscription_id}",
    )


async def enqueue(
    client: Client, task_queue: str, store: str, subscription_id: str, event: OutcomeEvent
) -> None:
    """Signal ``event`` to the subscriber's outbox, which attempts it (a retried publish
    signals it again; the outbox drops the repeat)."""
    await _signal(client, task_queue, store, subscription_id, OUTBOX_ENQUEUE, event)


class AttemptLog:
    """Inline first attempts, told to their outboxes at most every ``every`` seconds."""

    def __init__(self, client: Client, every: float = RECORD_EVERY) -> None:
        self._client = client
        self._every = every
        self._waiting: dict[str, list[OutboxDelivery]] = {}
        self._senders: dict[str, asyncio.Task[None]] = {}

    def record(
        self, task_queue: str, store: str, subscription_id: str, attempt: OutboxDelivery
    ) -> None:
        self._waiting.setdefault(subscription_id, []).append(attempt)
        if subscription_id not in self._senders:
            self._senders[subscription_id] = asyncio.create_task(
                self._send(task_queue, store, subscription_id)
            )

    async def _send(self, task_queue: str, store: str, subscription_id: str) -> None:
        try:
            while self._waiting.get(subscription_id):
                await asyncio.sleep(self._every)
                records = self._waiting.pop(subscription_id)
                try:
                    await _signal(
                        self._client, task_queue, store, subscription_id, OUTBOX_RECORD, records
                    )
                except Exception as error:  # the events were delivered; only lines are lost
                    log.warning(
                        "%d inline attempt(s) not recorded in outbox of subscription %s: %s",
                        len(records),
                        subscription_id,
                        error,
                    )
        finally:
            del self._senders[subscription_id]
