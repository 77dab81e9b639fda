"""SubscriberOutbox: one subscriber's first attempts when its publishes do not make them.

A publish makes an event's first attempt itself, inline (``activities/outcomes.py``),
unless its subscription is paused in that worker process (an inline attempt failed in
the last 30 s) or inline attempts are off (``CANCEL_WEBHOOK_INLINE_TIMEOUT_SECONDS=0``):
then it signals the event here (signal ``enqueue``, signal-with-start: the first event
starts it). Events that arrive while a batch is under way wait for the next, so the
busier the sagas, the bigger the batches and the fewer workflow tasks per event. The
POST itself is the local activity ``webhooks.deliver_batch``: every event of a batch
attempted concurrently, each with the full HTTP timeout. Why not every event through
here: a signal and a share of this workflow's tasks per event cost the sagas'
throughput 15-18% with a subscription to every type (``docs/performance.md``, section
8); an inline POST costs what it must.

An event its subscriber did not accept at once (5xx, 429, a timeout, a 410, another
4xx, an inactive subscription) is handed, inside that activity, to a ``WebhookDelivery``
with the id ``delivery-<event>-<subscription>`` carrying how the first attempt went: it
retries on the webhooks lane for 72 hours, or ends failed at once, listed and replayable
as before. So the outbox never waits for a subscriber that is down, and one slow event
never holds the next batch for longer than the HTTP timeout.

The latest :data:`RECENT` first attempts (its own, and the inline ones each worker
process records here, signal ``record``, about once a second) are kept for the query
``recent``, which ``GET /v1/subscriptions/{id}/deliveries`` reads beside the delivery
workflows. A retried publish signals an event twice: the latest :data:`SEEN` ids are
remembered and a repeat is dropped (receivers dedupe by ``webhook-id`` in any case).
The outbox waits without a timer while no event comes (an idle outbox costs the server
a row, nothing more), continues as new when the server suggests it (carrying its queue,
its recent deliveries and the ids it saw), and ends when its subscription is removed
(the signal ``close``) or found removed or disabled (a 410) at an attempt; an event
that comes later starts it again, to hand the event over as failed.
"""

from __future__ import annotations

from collections import deque
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from workflows import patches

with workflow.unsafe.imports_passed_through():
    from domain.outcomes import (
        DELIVER_BATCH_ACTIVITY,
        OUTBOX_CLOSE,
        OUTBOX_ENQUEUE,
        OUTBOX_RECENT,
        OUTBOX_RECORD,
        OUTBOX_WAITING,
        BatchResult,
        DeliveryBatch,
        OutboxDelivery,
        OutboxState,
        OutcomeEvent,
    )

#: Events attempted together (concurrently, in one local activity).
BATCH = 20
#: One batch: each POST waits at most ``CANCEL_WEBHOOK_TIMEOUT_SECONDS`` (10 s), at
#: most ``activities.webhooks.BATCH_CONCURRENCY`` at a time.
BATCH_TIMEOUT = timedelta(seconds=90)
#: A batch fails only when Temporal cannot be reached (to read the store or hand an
#: event over): retried until it can, its events attempted again (same ``webhook-id``).
BATCH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)
RECENT = 1000
SEEN = 2000


# Worker Versioning: AUTO_UPGRADE, declared in workflows/versioning.py (why there).
@workflow.defn(name="SubscriberOutbox")
class SubscriberOutbox:
    @workflow.init
    def __init__(self, state: OutboxState) -> None:
        # Set here, not in run: the first event's signal is handled before run begins.
        self._queued: list[OutcomeEvent] = list(state.queued)
        self._seen: dict[str, None] = dict.fromkeys(state.seen)
        self._recent: deque[OutboxDelivery] = deque(state.recent, maxlen=RECENT)
        self._attempting = 0
        self._closing = False

    @workflow.signal(name=OUTBOX_ENQUEUE)
    def enqueue(self, event: OutcomeEvent) -> None:
        if event.id in self._seen:
            return
        self._seen[event.id] = None
        if len(self._seen) > SEEN:
            del self._seen[next(iter(self._seen))]
        self._queued.append(event)

    @workflow.signal(name=OUTBOX_RECORD)
    def record(self, attempts: list[OutboxDelivery]) -> None:
        """First attempts a publish made itself (inline), listed with this outbox's own.
        Only remembered: nothing to attempt, no command (a run from before this signal
        replays the same with it)."""
        self._recent.extend(attempts)

    @workflow.signal(name=OUTBOX_CLOSE)
    def close(self) -> None:
        """The subscription was removed: end once the events queued are attempted."""
        self._closing = True

    @workflow.query(name=OUTBOX_RECENT)
    def recent(self) -> list[OutboxDelivery]:
        """The latest events attempted, newest first."""
        return list(reversed(self._recent))

    @workflow.query(name=OUTBOX_WAITING)
    def waiting(self) -> int:
        """Events not yet attempted, or in the batch under way."""
        return len(self._queued) + self._attempting

    @workflow.run
    async def run(self, state: OutboxState) -> None:
        # Runs from before continue as new only after a batch (patches.py says why).
        while_waiting = workflow.patched(patches.OUTBOX_CONTINUES_WHILE_WAITING)
        while True:
            await workflow.wait_condition(
                lambda: (
                    bool(self._queued)
                    or self._closing
                    or (while_waiting and workflow.info().is_continue_as_new_suggested())
                )
            )
            if self._queued:
                batch, self._queued = self._queued[:BATCH], self._queued[BATCH:]
                self._attempting = len(batch)
                inactive = await self._attempt(state, batch)
                self._attempting = 0
                if inactive and not self._queued:
                    return  # removed or disabled: nothing more will come
            elif self._closing:
                return  # the subscription was removed
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    OutboxState(
                        subscription_id=state.subscription_id,
                        store_id=state.store_id,
                        queued=self._queued,
                        recent=list(self._recent),
                        seen=list(self._seen),
                    )
                )

    async def _attempt(self, state: OutboxState, batch: list[OutcomeEvent]) -> bool:
        """The first attempt of every event in ``batch``; whether the subscription is
        no longer active."""
        result: BatchResult = await workflow.execute_local_activity(
            DELIVER_BATCH_ACTIVITY,
            DeliveryBatch(
                subscription_id=state.subscription_id,
                store_id=state.store_id,
                task_queue=workflow.info().task_queue,
                events=batch,
            ),
            result_type=BatchResult,
            start_to_close_timeout=BATCH_TIMEOUT,
            retry_policy=BATCH_RETRY,
        )
        now = workflow.now()
        for event, attempt in zip(batch, result.attempts, strict=True):
            self._recent.append(
                OutboxDelivery(
                    event_id=event.id,
                    event_type=str(event.type),
                    saga_id=event.subject,
                    attempted_at=now,
                    status=attempt.status,
                    delivered=attempt.delivered,
                    failure=attempt.failure,
                    retried=attempt.retried,
                )
            )
        return result.inactive
