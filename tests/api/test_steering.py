"""Operator requests over HTTP: revoke, reschedule, confirm, resolve, cancel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from temporalio.client import Client

from sandbox.testing import SandboxAdmin
from tests.helpers import eventually, wait_for_phase
from worker import ProductWorkers


def in_days(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


async def test_reschedule_then_revoke_a_waiting_termination(
    http: httpx.AsyncClient, client: Client, worker: ProductWorkers, uid: str
) -> None:
    started = await http.post(
        "/v1/line-terminations", json={"subscriptionId": f"SUB-{uid}", "wishDate": in_days(2)}
    )
    workflow_id = started.json()["workflowId"]
    await wait_for_phase(client, workflow_id, "WAITING")
    saga = f"/v1/sagas/{workflow_id}"

    later = in_days(3)
    moved = await http.post(f"{saga}/reschedule", json={"wishDate": later})
    assert moved.status_code == 200, moved.text
    assert moved.json()["phase"] == "WAITING" and moved.json()["wishDate"].startswith(later[:19])

    past = await http.post(f"{saga}/reschedule", json={"wishDate": in_days(-1)})
    assert past.status_code == 422
    assert past.json()["detail"] == [{"field": "wishDate", "rule": "must not be in the past"}]

    too_long = await http.post(f"{saga}/revoke", json={"reason": "r" * 165})
    assert too_long.status_code == 422 and too_long.json()["detail"][0]["field"] == "reason"

    revoked = await http.post(f"{saga}/revoke", json={"reason": "customer stayed"})
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["phase"] == "REVOKED"

    await client.get_workflow_handle(workflow_id).result()
    closed = await http.post(f"{saga}/revoke", json={})
    assert closed.status_code == 409 and "closed" in closed.json()["detail"]


async def test_a_refusal_by_the_saga_is_409_with_its_reason_and_confirm_works_on_a_draft(
    http: httpx.AsyncClient,
    client: Client,
    worker: ProductWorkers,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    confirmed_order, draft_order = f"ord-{uid}", f"ord-draft-{uid}"
    for order in (confirmed_order, draft_order):
        sandbox_admin.rebilly_seed_order(order)
    confirmed = await http.post(
        "/v1/order-cancellations", json={"orderId": confirmed_order, "churnTime": in_days(2)}
    )
    draft = await http.post(
        "/v1/order-cancellations",
        json={"orderId": draft_order, "churnTime": in_days(2), "draft": True},
    )
    await wait_for_phase(client, confirmed.json()["workflowId"], "WAITING")
    draft_state = await wait_for_phase(client, draft.json()["workflowId"], "WAITING")
    assert draft_state["rebillyStatus"] == "draft" and draft_state["awaitingConfirmation"]

    refused = await http.post(f"/v1/sagas/{confirmed.json()['workflowId']}/confirm")
    assert refused.status_code == 409, refused.text
    assert "only a draft can be confirmed" in refused.json()["detail"]

    accepted = await http.post(f"/v1/sagas/{draft.json()['workflowId']}/confirm")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["rebillyStatus"] in ("confirmed", "completed")


async def test_resolve_is_validated_and_refused_outside_needs_attention(
    http: httpx.AsyncClient, client: Client, worker: ProductWorkers, uid: str
) -> None:
    started = await http.post(
        "/v1/customer-churns",
        json={
            "customerId": f"C-{uid}",
            "wishDate": in_days(2),
            "stn": {"subscriptionId": f"SUB-{uid}"},
        },
    )
    workflow_id = started.json()["workflowId"]
    await wait_for_phase(client, workflow_id, "WAITING")

    bad = await http.post(f"/v1/sagas/{workflow_id}/resolve", json={"action": "shrug"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "action"

    refused = await http.post(f"/v1/sagas/{workflow_id}/resolve", json={"action": "retry"})
    assert refused.status_code == 409, refused.text
    assert refused.json()["detail"].startswith("refused by the saga:")


async def test_cancel_compensates_and_stops(
    http: httpx.AsyncClient, client: Client, worker: ProductWorkers, uid: str
) -> None:
    started = await http.post(
        "/v1/line-terminations", json={"subscriptionId": f"SUB-{uid}", "wishDate": in_days(2)}
    )
    workflow_id = started.json()["workflowId"]
    await wait_for_phase(client, workflow_id, "WAITING")

    cancelled = await http.post(f"/v1/sagas/{workflow_id}/cancel")

    assert cancelled.status_code == 202, cancelled.text
    assert cancelled.json()["statusUrl"].endswith(f"/v1/sagas/{workflow_id}")
    # LineTermination undoes its submitted termination and reports REVOKED.
    await wait_for_phase(client, workflow_id, "REVOKED")

    async def closed() -> None:
        description = await client.get_workflow_handle(workflow_id).describe()
        assert description.status is not None and description.status.name == "CANCELED"

    await eventually(closed)
    again = await http.post(f"/v1/sagas/{workflow_id}/cancel")
    assert again.status_code == 409 and "CANCELED" in again.json()["detail"]
