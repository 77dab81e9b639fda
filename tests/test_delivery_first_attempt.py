"""A delivery's first attempt is a local activity in the delivery's one workflow task
(patch ``webhook-first-attempt-local``); only a failed first attempt falls back to the
regular activity on the webhooks lane, retried with backoff. Over real HTTP to the
sandbox's subscriber: the history a delivery leaves, counted, and the same webhook-id
on the retry."""

from __future__ import annotations

from collections import Counter
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from config.settings import OrchestratorSettings
from domain.outcomes import DeliveryListed, DeliveryResult, OutcomeEventType
from sandbox.testing import SandboxAdmin
from tests.helpers import eventually, record_history
from tests.outcomes import subscribe
from tests.test_outcome_delivery import attempts, deliveries_of, terminate
from worker import ProductWorkers

COMPLETED = [OutcomeEventType.COMPLETED]


async def delivered_history(
    client: Client, settings: OrchestratorSettings, subscription_id: str, name: str
) -> tuple[DeliveryListed, DeliveryResult, Counter[str]]:
    """The one delivery of the subscription once delivered: its listing, its result and
    how many of each history event it left (recorded as ``name``)."""
    [delivery] = await deliveries_of(client, settings.task_queue, subscription_id, "delivered")
    handle = client.get_workflow_handle(delivery.delivery_id, result_type=DeliveryResult)
    result = await handle.result()
    await record_history(handle, name)
    history = await handle.fetch_history()
    counts = Counter(EventType.Name(event.event_type) for event in history.events)
    return delivery, result, counts


async def test_a_delivery_accepted_at_once_is_one_workflow_task_and_no_activity_task(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    endpoint = f"e2e-once-{uid}"
    subscription, _ = await subscribe(
        client, settings.task_queue, sandbox_admin, endpoint, types=COMPLETED
    )
    await terminate(client, settings, uid)

    _, result, counts = await delivered_history(
        client, settings, subscription.id, "webhook_delivery_delivered_at_once"
    )

    assert [a["status"] for a in attempts(sandbox_admin, endpoint)] == [204]
    assert result.status == 204 and result.attempt == 1
    assert counts["EVENT_TYPE_WORKFLOW_TASK_COMPLETED"] == 1, counts
    assert counts["EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"] == 0, counts
    assert counts["EVENT_TYPE_TIMER_STARTED"] == 0, counts
    # The patch's marker and the local activity's.
    assert counts["EVENT_TYPE_MARKER_RECORDED"] == 2, counts
    assert counts["EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"] == 1, counts


async def test_a_503_first_attempt_falls_back_to_the_retried_activity_with_the_same_id(
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
    _, result, counts = await delivered_history(
        client, settings, subscription.id, "webhook_delivery_first_attempt_failed"
    )

    assert len({a["webhookId"] for a in seen}) == 1
    assert seen[0]["raw"] == seen[2]["raw"]
    # Attempts count from the local one: the activity's second attempt is the third.
    assert result.status == 204 and result.attempt == 3
    assert counts["EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"] == 1, counts
    # The backoff before the first regular attempt is a durable timer.
    assert counts["EVENT_TYPE_TIMER_STARTED"] == 1, counts
    assert counts["EVENT_TYPE_MARKER_RECORDED"] == 2, counts
