"""Delivering outcome events over real HTTP: the production worker (its webhooks lane),
the sandbox's subscriber checking signatures with the ``standardwebhooks`` library.
A 410 disables the subscription, another 4xx fails the delivery until a replay sends
the same event (the same webhook-id) again, a rotation signs with both secrets, a slow
subscriber is timed out and retried, and production refuses to POST inward (SSRF)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from standardwebhooks import Webhook
from temporalio.client import Client, WorkflowFailureError

from config.settings import Environment, OrchestratorSettings, WebhookSettings
from domain.common import SagaKind
from domain.outcomes import DeliveryListed, OutcomeEventType, subscriptions_workflow_id
from domain.stn import TerminationRequest
from sandbox.testing import SandboxAdmin
from starter import outcomes, sagas
from tests.conftest import TestSandbox, provider_settings_for
from tests.helpers import eventually, record_history, result_of
from tests.outcomes import events, new_secret, phone_forms, phone_number, subscribe, verify
from worker import ProductWorkers, build_worker, provider_clients

COMPLETED = [OutcomeEventType.COMPLETED]


async def terminate(client: Client, settings: OrchestratorSettings, uid: str) -> str:
    request = TerminationRequest(phone_number=phone_number(uid), customer_id=f"C-{uid}")
    started = await sagas.start(client, SagaKind.LINE_TERMINATION, request, settings)
    assert (await result_of(client, started.workflow_id))["phase"] == "COMPLETED"
    return started.workflow_id


def attempts(admin: SandboxAdmin, endpoint: str) -> list[dict[str, Any]]:
    return list(admin.subscriber_received(endpoint)["attempts"])


async def deliveries_of(
    client: Client, task_queue: str, subscription_id: str, state: str
) -> list[DeliveryListed]:
    async def listed() -> list[DeliveryListed]:
        found = await outcomes.list_deliveries(client, task_queue, subscription_id)
        assert found and all(d.state == state for d in found), found
        return found

    return await eventually(listed, within=30)


async def test_a_503_is_retried_with_the_same_webhook_id_and_no_phone_number(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    endpoint = f"e2e-503-{uid}"
    subscription, secret = await subscribe(
        client, settings.task_queue, sandbox_admin, endpoint, types=COMPLETED, failCount=1
    )
    workflow_id = await terminate(client, settings, uid)

    async def delivered() -> list[dict[str, Any]]:
        seen = attempts(sandbox_admin, endpoint)
        assert [a["status"] for a in seen] == [503, 204], seen
        return seen

    first, second = await eventually(delivered, within=30)
    assert first["webhookId"] == second["webhookId"] == second["body"]["id"]
    for attempt in (first, second):
        assert attempt["verified"]
        verify(attempt, secret)
        assert not any(form in attempt["raw"] for form in phone_forms(phone_number(uid)))
    assert second["body"]["data"]["phoneNumber"] == "06-****" + phone_number(uid)[-4:]
    assert second["body"]["subject"] == workflow_id
    [delivery] = await deliveries_of(client, settings.task_queue, subscription.id, "delivered")
    assert delivery.saga_id == workflow_id and delivery.event_type == "saga.completed"
    await record_history(
        client.get_workflow_handle(delivery.delivery_id), "webhook_delivery_retried"
    )


async def test_a_410_disables_the_subscription_and_ends_the_delivery(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    endpoint = f"e2e-410-{uid}"
    subscription, _ = await subscribe(
        client, settings.task_queue, sandbox_admin, endpoint, types=COMPLETED, gone=True
    )
    await terminate(client, settings, uid)

    [failed] = await deliveries_of(client, settings.task_queue, subscription.id, "failed")

    with pytest.raises(WorkflowFailureError) as ended:
        await client.get_workflow_handle(failed.delivery_id).result()
    assert "410 Gone" in str(ended.value.cause.__cause__ or ended.value.cause)
    view = await outcomes.get_subscription(client, settings.task_queue, subscription.id)
    assert view.disabled == "the subscriber answered 410 Gone"
    assert [a["status"] for a in attempts(sandbox_admin, endpoint)] == [410]  # not retried
    with pytest.raises(outcomes.SubscriptionDisabled):
        await outcomes.replay_failed(client, settings.task_queue, subscription.id)
    await record_history(
        client.get_workflow_handle(subscriptions_workflow_id(settings.task_queue)),
        "outcome_subscriptions",
    )


async def test_a_refused_delivery_fails_and_a_replay_sends_the_same_event_again(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    endpoint = f"e2e-400-{uid}"
    subscription, _ = await subscribe(
        client,
        settings.task_queue,
        sandbox_admin,
        endpoint,
        types=COMPLETED,
        failStatus=400,
        failCount=1,
    )
    await terminate(client, settings, uid)
    [failed] = await deliveries_of(client, settings.task_queue, subscription.id, "failed")
    assert [a["status"] for a in attempts(sandbox_admin, endpoint)] == [400]  # not retried

    replayed = await outcomes.replay_failed(client, settings.task_queue, subscription.id)

    assert replayed == [failed.delivery_id]
    await deliveries_of(client, settings.task_queue, subscription.id, "delivered")
    refused, accepted = attempts(sandbox_admin, endpoint)
    assert accepted["status"] == 204
    assert refused["webhookId"] == accepted["webhookId"] == failed.event_id
    assert refused["raw"] == accepted["raw"]


async def test_a_rotated_secret_signs_beside_the_previous_one(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    endpoint = f"e2e-rotate-{uid}"
    subscription, old = await subscribe(
        client, settings.task_queue, sandbox_admin, endpoint, types=COMPLETED
    )
    new = new_secret()
    rotated = await outcomes.rotate_secret(client, settings.task_queue, subscription.id, new)
    assert rotated.rotating_until is not None
    # The receiver already moved to the new secret: the new signature is the one it checks.
    sandbox_admin.configure_subscriber(endpoint, secrets=[new])

    await terminate(client, settings, uid)

    async def delivered() -> dict[str, Any]:
        received = sandbox_admin.subscriber_received(endpoint)
        assert len(received["events"]) == 1, received["attempts"]
        [event] = received["events"]
        return dict(event)

    attempt = await eventually(delivered, within=30)
    assert attempt["verified"] and len(attempt["signatures"]) == 2
    verify(attempt, new)
    verify(attempt, old)  # a receiver still on the old secret accepts it too
    stamp = attempt["timestamp"]
    for secret, signature in zip((new, old), attempt["signatures"], strict=True):
        signed = Webhook(secret).sign(attempt["webhookId"], _at(stamp), attempt["raw"])
        assert signature == signed


def _at(stamp: str) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(int(stamp), UTC)


@pytest.fixture
async def production_worker(
    client: Client, sandbox: TestSandbox, task_queue: str
) -> AsyncIterator[ProductWorkers]:
    """The production workers with the product in production mode (payload keys set
    by tests/conftest.py): subscriber addresses are checked at every attempt."""
    async with (
        provider_clients(provider_settings_for(sandbox)) as clients,
        build_worker(client, task_queue, clients, environment=Environment.PRODUCTION) as running,
    ):
        yield running


async def test_production_refuses_to_deliver_to_an_internal_address(
    client: Client,
    production_worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    """The subscription was made while its name resolved outward (here: added in
    development mode); at delivery time it resolves to 127.0.0.1, and nothing is sent."""
    endpoint = f"e2e-ssrf-{uid}"
    subscription, _ = await subscribe(
        client, settings.task_queue, sandbox_admin, endpoint, types=COMPLETED
    )
    await terminate(client, settings, uid)

    [failed] = await deliveries_of(client, settings.task_queue, subscription.id, "failed")

    with pytest.raises(WorkflowFailureError) as ended:
        await client.get_workflow_handle(failed.delivery_id).result()
    assert "loopback address: refused in production" in str(
        ended.value.cause.__cause__ or ended.value.cause
    )
    assert attempts(sandbox_admin, endpoint) == []


@pytest.fixture
async def impatient_worker(
    client: Client, sandbox: TestSandbox, task_queue: str
) -> AsyncIterator[ProductWorkers]:
    """Delivery attempts time out after 1 s (``CANCEL_WEBHOOK_TIMEOUT_SECONDS``)."""
    async with (
        provider_clients(provider_settings_for(sandbox)) as clients,
        build_worker(
            client, task_queue, clients, webhooks=WebhookSettings(timeout_seconds=1)
        ) as running,
    ):
        yield running


async def test_a_slow_subscriber_is_timed_out_and_retried(
    client: Client,
    impatient_worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    endpoint = f"e2e-slow-{uid}"
    subscription, secret = await subscribe(
        client, settings.task_queue, sandbox_admin, endpoint, types=COMPLETED, delaySeconds=3
    )
    await terminate(client, settings, uid)

    async def timed_out() -> None:
        found = await outcomes.list_deliveries(client, settings.task_queue, subscription.id)
        assert len(found) == 1, found
        [retrying] = found
        assert retrying.state == "retrying" and retrying.attempt and retrying.attempt >= 2
        assert "ReadTimeout" in (retrying.last_failure or ""), retrying

    await eventually(timed_out, within=30)
    sandbox_admin.configure_subscriber(endpoint, secrets=[secret])  # answers at once now
    await deliveries_of(client, settings.task_queue, subscription.id, "delivered")
    assert len(events(sandbox_admin, endpoint)) == 1
