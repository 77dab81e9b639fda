"""Provider webhooks through the whole loop: the sandbox sends them, the API verifies and
routes them, the saga that holds their subject records them."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from config.settings import OrchestratorSettings
from domain import search_attributes as sa
from domain.churn import CustomerChurnRequest
from domain.common import SagaKind
from domain.rebilly import OrderCancellationRequest
from sandbox.settings import SandboxSettings
from sandbox.testing import SandboxAdmin
from starter import sagas
from starter.api import airalo_signature
from tests.api.conftest import (
    AIRALO_WEBHOOK_SECRET,
    REBILLY_WEBHOOK_PASSWORD,
    REBILLY_WEBHOOK_USERNAME,
    ApiProcess,
)
from tests.conftest import TestSandbox
from tests.helpers import eventually, status_of, wait_for_phase
from worker import ProductWorkers

AIRALO_HOOK = "/v1/webhooks/airalo"
REBILLY_HOOK = "/v1/webhooks/rebilly"


def days(n: float) -> datetime:
    return datetime.now(UTC) + timedelta(days=n)


async def visible(client: Client, attribute: str, value: str, workflow_id: str) -> None:
    """Webhooks find sagas through visibility, which lags a start by a moment."""

    async def indexed() -> None:
        query = f"{attribute} = '{value}' AND ExecutionStatus = 'Running'"
        found = [w.id async for w in client.list_workflows(query)]
        assert workflow_id in found, found

    await eventually(indexed)


async def start_churn_holding(
    client: Client, settings: OrchestratorSettings, admin: SandboxAdmin, uid: str, api: ApiProcess
) -> tuple[str, str]:
    """A churn at day 3 holding an eSIM order due at day 2: kept, still pending at
    Airalo, its webhook addressed to the API."""
    kept = admin.airalo_seed_future_order(
        f"pkg-{uid}", days(2), webhook_url=api.base_url + AIRALO_HOOK
    )["request_id"]
    request = CustomerChurnRequest.model_validate(
        {"customerId": f"C-{uid}", "wishDate": days(3), "airalo": {"requestIds": [kept]}}
    )
    workflow_id = (
        await sagas.start(client, SagaKind.CUSTOMER_CHURN, request, settings)
    ).workflow_id
    await wait_for_phase(client, workflow_id, "WAITING")
    await visible(client, sa.AIRALO_REQUEST_IDS.name, kept, workflow_id)
    return workflow_id, kept


async def test_a_fired_order_reaches_the_saga_that_holds_it(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    api: ApiProcess,
    uid: str,
) -> None:
    workflow_id, kept = await start_churn_holding(client, settings, sandbox_admin, uid, api)

    sandbox_admin.airalo_fire(kept)  # the sandbox signs and POSTs the webhook

    async def recorded() -> dict[str, Any]:
        state = await status_of(client, workflow_id)
        assert [(n["event"], n["subject"]) for n in state["notices"]] == [
            ("future_order.fired", kept)
        ]
        return state

    await eventually(recorded)
    [delivery] = sandbox_admin.webhook_deliveries(provider="airalo")[-1:]
    assert delivery["status"] == "delivered" and delivery["statusCode"] == 200


async def test_a_forged_or_missing_signature_is_401_and_no_saga_hears_of_it(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    api: ApiProcess,
    uid: str,
) -> None:
    workflow_id, kept = await start_churn_holding(client, settings, sandbox_admin, uid, api)
    payload = {"request_id": kept, "data": {"id": 1}, "meta": {"message": "success"}}
    body = json.dumps(payload).encode()
    forged = airalo_signature.sign(payload, "not-the-client-secret")
    tampered = airalo_signature.sign({**payload, "request_id": "x" * 25}, AIRALO_WEBHOOK_SECRET)

    async with httpx.AsyncClient(base_url=api.base_url) as http:
        answers = [
            await http.post(AIRALO_HOOK, content=body, headers=headers)
            for headers in ({"airalo-signature": forged}, {"airalo-signature": tampered}, {})
        ]
        url_check = await http.head(AIRALO_HOOK)
        genuine = await http.post(
            AIRALO_HOOK,
            content=body,
            headers={"airalo-signature": airalo_signature.sign(payload, AIRALO_WEBHOOK_SECRET)},
        )

    assert [answer.status_code for answer in answers] == [401, 401, 401]
    assert url_check.status_code == 200  # Airalo's check of the URL
    # The 401s were answered before any routing: only the genuine one reached the saga.
    assert genuine.status_code == 200 and genuine.json()["routedTo"] == [workflow_id]
    state = await status_of(client, workflow_id)
    assert len(state["notices"]) == 1


@pytest.mark.own_sandbox  # points the sandbox's Rebilly webhooks at the API
async def test_a_reactivation_behind_our_back_is_shown_once_however_often_delivered(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox: TestSandbox,
    sandbox_admin: SandboxAdmin,
    api: ApiProcess,
    uid: str,
) -> None:
    order = f"ord-{uid}"
    sandbox_admin.rebilly_seed_order(order)
    request = OrderCancellationRequest.model_validate({"orderId": order, "churnTime": days(5)})
    workflow_id = (
        await sagas.start(client, SagaKind.ORDER_CANCELLATION, request, settings)
    ).workflow_id
    await wait_for_phase(client, workflow_id, "WAITING")
    await visible(client, sa.REBILLY_ORDER_ID.name, order, workflow_id)
    sandbox_admin.set_webhook_targets(
        rebilly_url=api.base_url + REBILLY_HOOK,
        rebilly_username=REBILLY_WEBHOOK_USERNAME,
        rebilly_password=REBILLY_WEBHOOK_PASSWORD,
    )
    sandbox_admin.add_webhook_fault(mode="duplicate", provider="rebilly", count=1)

    # Someone reactivates the order in Rebilly while our cancellation waits.
    async with httpx.AsyncClient(base_url=sandbox.rebilly_url) as rebilly:
        reactivated = await rebilly.post(
            "/order-reactivations",
            json={"orderId": order},
            headers={"REB-APIKEY": SandboxSettings().rebilly_api_key},
        )
    assert reactivated.status_code == 201, reactivated.text
    await asyncio.to_thread(
        sandbox_admin.wait_for_webhooks, 2, provider="rebilly", event="subscription-reactivated"
    )

    async def shown() -> dict[str, Any]:
        state = await status_of(client, workflow_id)
        events = [(n["event"], n["subject"]) for n in state["notices"]]
        assert events == [("subscription-reactivated", order)], events
        return state

    state = await eventually(shown)
    assert state["phase"] == "WAITING"  # shown, not acted on
    deliveries = sandbox_admin.webhook_deliveries(provider="rebilly")
    assert [d["statusCode"] for d in deliveries if d["status"] == "delivered"] == [200, 200]


async def test_rebilly_webhooks_need_its_credentials(api: ApiProcess) -> None:
    body = {"eventType": "subscription-churned", "subscriptionId": "ord-x"}
    async with httpx.AsyncClient(base_url=api.base_url) as http:
        anonymous = await http.post(REBILLY_HOOK, json=body)
        wrong = await http.post(REBILLY_HOOK, json=body, auth=(REBILLY_WEBHOOK_USERNAME, "no"))
        right = await http.post(
            REBILLY_HOOK, json=body, auth=(REBILLY_WEBHOOK_USERNAME, REBILLY_WEBHOOK_PASSWORD)
        )

    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Basic"
    assert wrong.status_code == 401
    assert right.status_code == 200 and right.json()["routedTo"] == []  # nothing of ours


async def test_a_verified_webhook_about_nothing_we_could_hold_is_200_not_a_crash(
    api: ApiProcess,
) -> None:
    """Both were 500s: a Rebilly ``eventType`` that is no string (unhashable), an Airalo
    ``request_id`` longer than any id a saga holds (the notice refused it)."""
    rebilly_odd = {"eventType": ["subscription-churned"], "subscriptionId": "ord-x"}
    rebilly_long = {"eventType": "subscription-churned", "subscriptionId": "o" * 129}
    airalo_long = {"request_id": "r" * 129}
    signed = {"airalo-signature": airalo_signature.sign(airalo_long, AIRALO_WEBHOOK_SECRET)}
    rebilly_auth = (REBILLY_WEBHOOK_USERNAME, REBILLY_WEBHOOK_PASSWORD)
    async with httpx.AsyncClient(base_url=api.base_url) as http:
        odd = await http.post(REBILLY_HOOK, json=rebilly_odd, auth=rebilly_auth)
        long_order = await http.post(REBILLY_HOOK, json=rebilly_long, auth=rebilly_auth)
        long_request = await http.post(
            AIRALO_HOOK, content=json.dumps(airalo_long).encode(), headers=signed
        )

    assert odd.status_code == 200 and odd.json() == {"event": None, "subject": None, "routedTo": []}
    assert long_order.status_code == 200 and long_order.json()["routedTo"] == []
    assert long_order.json()["event"] == "subscription-churned"
    assert long_request.status_code == 200 and long_request.json()["routedTo"] == []
