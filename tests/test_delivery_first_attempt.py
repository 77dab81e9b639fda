"""The first attempt of an event is made inline by its publish (``activities/outcomes.py``):
events accepted at once leave no workflow of their own, only a line in their
subscriber's outbox (``SubscriberOutbox``) for the listing; an event not accepted is
handed to a ``WebhookDelivery`` that goes on from there with the lane's retries, and the
subscription's next events go to its outbox, which attempts them in batches. Over real
HTTP to the sandbox's subscriber: the histories left, counted, and the same webhook-id
on every attempt."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from config.settings import OrchestratorSettings
from domain.outcomes import (
    OUTBOX_CLOSE,
    OUTBOX_ENQUEUE,
    OUTBOX_RECORD,
    OUTBOX_WAITING,
    DeliveryResult,
    OutboxState,
    OutcomeEvent,
    OutcomeEventType,
    outbox_workflow_id,
    subscriptions_workflow_id,
)
from sandbox.testing import SandboxAdmin
from starter import outcomes
from tests.helpers import eventually, record_history
from tests.outcomes import events, subscribe
from tests.test_outcome_delivery import attempts, deliveries_of, terminate
from worker import ProductWorkers

COMPLETED = [OutcomeEventType.COMPLETED]


def counted(events_: Any) -> Counter[str]:
    return Counter(EventType.Name(event.event_type) for event in events_)


def signals(events_: Any) -> Counter[str]:
    return Counter(
        event.workflow_execution_signaled_event_attributes.signal_name
        for event in events_
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    )


async def test_events_accepted_inline_leave_no_workflow_of_their_own(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    endpoint = f"e2e-inline-{uid}"
    subscription, _ = await subscribe(
        client, settings.task_queue, sandbox_admin, endpoint, types=COMPLETED
    )
    sagas = await asyncio.gather(*(terminate(client, settings, f"{uid}{n}") for n in range(4)))

    # Listed from the outbox's records of the inline attempts (sent within a second).
    delivered = await deliveries_of(client, settings.task_queue, subscription.id, "delivered")
    assert sorted(d.saga_id or "" for d in delivered) == sorted(sagas)
    assert [a["status"] for a in attempts(sandbox_admin, endpoint)] == [204] * 4
    for delivery in delivered:
        with pytest.raises(RPCError) as absent:
            await client.get_workflow_handle(delivery.delivery_id).describe()
        assert absent.value.status == RPCStatusCode.NOT_FOUND
    # Removing the subscription ends its outbox.
    await outcomes.remove_subscription(client, settings.task_queue, subscription.id)
    outbox = client.get_workflow_handle(outbox_workflow_id(subscription.id))
    await outbox.result()
    await record_history(outbox, "subscriber_outbox_inline_records")
    history = (await outbox.fetch_history()).events
    counts, told = counted(history), signals(history)
    # Records only, batched (at most one signal per event), and the close.
    assert set(told) == {OUTBOX_RECORD, OUTBOX_CLOSE}, told
    assert 1 <= told[OUTBOX_RECORD] <= 4 and told[OUTBOX_CLOSE] == 1, told
    # Nothing attempted by the outbox: the only marker is the patch's.
    assert counts["EVENT_TYPE_MARKER_RECORDED"] == 1, counts
    assert counts["EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"] == 0, counts
    assert counts["EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"] == 1, counts


async def test_after_a_failed_inline_attempt_the_outbox_attempts_the_next_events(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    endpoint = f"e2e-paused-{uid}"
    subscription, _ = await subscribe(
        client, settings.task_queue, sandbox_admin, endpoint, types=COMPLETED, failCount=1
    )
    first = await terminate(client, settings, f"{uid}1")  # inline: 503, handed over
    second = await terminate(client, settings, f"{uid}2")  # paused: through the outbox

    delivered = await deliveries_of(client, settings.task_queue, subscription.id, "delivered")
    assert sorted(d.saga_id or "" for d in delivered) == sorted([first, second])
    seen = attempts(sandbox_admin, endpoint)
    assert sorted(a["status"] for a in seen) == [204, 204, 503], seen
    outbox = client.get_workflow_handle(outbox_workflow_id(subscription.id))
    history = (await outbox.fetch_history()).events
    told = signals(history)
    assert told[OUTBOX_ENQUEUE] == 1, told  # the second event, and only it
    # Its attempt: a batch, one local activity marker beside the patch's.
    assert counted(history)["EVENT_TYPE_MARKER_RECORDED"] == 2
    # The first event's retry was its delivery's own workflow; the second has none.
    by_saga = {d.saga_id: d.delivery_id for d in delivered}
    await client.get_workflow_handle(by_saga[first]).describe()
    with pytest.raises(RPCError):
        await client.get_workflow_handle(by_saga[second]).describe()


async def test_a_503_first_attempt_is_handed_to_a_delivery_with_the_same_id(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    endpoint = f"e2e-fallback-{uid}"
    subscription, _ = await subscribe(
        client, settings.task_queue, sandbox_admin, endpoint, types=COMPLETED, failCount=2
    )
    await terminate(client, settings, uid)

    async def three_attempts() -> list[dict[str, Any]]:
        seen = attempts(sandbox_admin, endpoint)
        assert [a["status"] for a in seen] == [503, 503, 204], seen
        return seen

    seen = await eventually(three_attempts, within=30)
    [delivery] = await deliveries_of(client, settings.task_queue, subscription.id, "delivered")
    handle: WorkflowHandle[Any, DeliveryResult] = client.get_workflow_handle(
        delivery.delivery_id, result_type=DeliveryResult
    )
    result = await handle.result()
    await record_history(handle, "webhook_delivery_handed_over")
    counts = counted((await handle.fetch_history()).events)

    assert len({a["webhookId"] for a in seen}) == 1
    assert seen[0]["raw"] == seen[2]["raw"]
    # Attempts count from the inline one: the activity's second attempt is the third.
    assert result.status == 204 and result.attempt == 3
    assert counts["EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"] == 1, counts
    # The backoff before the lane's first attempt is a durable timer; no local attempt
    # (the only marker is the patch's).
    assert counts["EVENT_TYPE_TIMER_STARTED"] == 1, counts
    assert counts["EVENT_TYPE_MARKER_RECORDED"] == 1, counts


async def test_an_event_signalled_twice_is_attempted_once(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    """A retried publish signals the same event again: the outbox drops the repeat."""
    endpoint = f"e2e-twice-{uid}"
    subscription, _ = await subscribe(client, settings.task_queue, sandbox_admin, endpoint)

    def event(n: int) -> OutcomeEvent:
        return OutcomeEvent(
            id=f"evt_{uid}{n}",
            type=OutcomeEventType.COMPLETED,
            subject=f"terminate-{uid}",
            time=datetime.now(UTC),
            data={"phase": "COMPLETED", "sequence": n},
        )

    async def signal(sent: OutcomeEvent) -> None:
        await client.start_workflow(
            "SubscriberOutbox",
            OutboxState(
                subscription_id=subscription.id,
                store_id=subscriptions_workflow_id(settings.task_queue),
            ),
            id=outbox_workflow_id(subscription.id),
            task_queue=settings.task_queue,
            start_signal=OUTBOX_ENQUEUE,
            start_signal_args=[sent],
        )

    for sent in (event(1), event(1), event(2)):
        await signal(sent)

    outbox = client.get_workflow_handle(outbox_workflow_id(subscription.id))

    async def attempted() -> None:
        # Every event signalled was attempted (the query counts a batch under way).
        assert await outbox.query(OUTBOX_WAITING, result_type=int) == 0
        assert sorted(e["id"] for e in events(sandbox_admin, endpoint)) == [
            f"evt_{uid}1",
            f"evt_{uid}2",
        ]

    await eventually(attempted, within=30)
    assert len(attempts(sandbox_admin, endpoint)) == 2  # the repeat was never POSTed
