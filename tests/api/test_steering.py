"""Operator requests over HTTP: revoke, reschedule, confirm, resolve, cancel.

Each is answered within ``CANCEL_OPERATOR_WAIT_SECONDS``, however busy the saga's
worker is: the tests at the end make the saga's answer slow on purpose (its worker
stopped, or a provider call held), never by racing a timer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from sandbox.testing import SandboxAdmin
from tests.api.conftest import ADMIN_TOKEN, ApiProcess, bearer, start_api
from tests.conftest import TestSandbox, product_worker
from tests.helpers import eventually, wait_for_phase
from worker import ProductWorkers

#: The bound of the API these tests start (the default is 5 s).
BOUND_SECONDS = 1.5
#: How long the client waits for any answer: a connection left hanging fails the test.
CLIENT_TIMEOUT_SECONDS = 30.0


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


# -- answered within the bound, however busy the worker -------------------------------------


@pytest.fixture(scope="module")
def bounded_api(temporal_env: WorkflowEnvironment, task_queue: str) -> Iterator[ApiProcess]:
    """An API that waits at most BOUND_SECONDS for a saga's answer, on the tests' queue."""
    client = temporal_env.client
    process = start_api(
        TEMPORAL_ADDRESS=client.service_client.config.target_host,
        TEMPORAL_NAMESPACE=client.namespace,
        CANCEL_TASK_QUEUE=task_queue,
        CANCEL_OPERATOR_WAIT_SECONDS=str(BOUND_SECONDS),
    )
    yield process
    process.stop()
    process.log.unlink(missing_ok=True)


@pytest.fixture
async def bounded_http(bounded_api: ApiProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=bounded_api.base_url,
        headers=bearer(ADMIN_TOKEN),
        timeout=CLIENT_TIMEOUT_SECONDS,
    ) as http:
        yield http


async def test_a_revoke_is_answered_within_the_bound_while_the_worker_is_away(
    bounded_http: httpx.AsyncClient,
    client: Client,
    sandbox: TestSandbox,
    task_queue: str,
    uid: str,
) -> None:
    """No worker takes the saga's task: 202 with where to follow it, and the revoke is
    applied once a worker is back."""
    async with product_worker(client, sandbox, task_queue):
        started = await bounded_http.post(
            "/v1/line-terminations", json={"subscriptionId": f"SUB-{uid}", "wishDate": in_days(2)}
        )
        workflow_id = started.json()["workflowId"]
        await wait_for_phase(client, workflow_id, "WAITING")
    # The worker has stopped: nothing can answer for the saga now.

    sent = await bounded_http.post(f"/v1/sagas/{workflow_id}/revoke", json={"reason": "stays"})

    assert sent.status_code == 202, sent.text
    pending = sent.json()
    assert pending["statusUrl"].endswith(f"/v1/sagas/{workflow_id}")
    assert sent.headers["Location"] == pending["statusUrl"]
    assert pending["workflowId"] == workflow_id and pending["stage"] == "sent"
    assert pending["requestId"] and "follow its status" in pending["detail"]
    # The status URL does not hang either: the saga cannot answer its status now.
    busy = await bounded_http.get(pending["statusUrl"])
    assert busy.status_code == 503 and "did not answer its status" in busy.json()["detail"]
    assert busy.headers["Retry-After"]

    async with product_worker(client, sandbox, task_queue):
        state = await wait_for_phase(client, workflow_id, "REVOKED", within=60)
        followed = await bounded_http.get(pending["statusUrl"])
    assert followed.status_code == 200 and followed.json()["phase"] == "REVOKED"
    assert [step["step"] for step in state["steps"]].count("revoked") == 1, state["steps"]


@pytest.mark.own_sandbox
async def test_a_revoke_the_saga_accepted_but_still_applies_is_202_accepted(
    bounded_http: httpx.AsyncClient,
    client: Client,
    worker: ProductWorkers,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    """sTN holds the cancellation call: the saga accepted the revoke (its validator ran)
    and answers it only when sTN does, after the bound."""
    started = await bounded_http.post(
        "/v1/line-terminations", json={"subscriptionId": f"SUB-{uid}", "wishDate": in_days(2)}
    )
    workflow_id = started.json()["workflowId"]
    await wait_for_phase(client, workflow_id, "WAITING")
    sandbox_admin.add_fault(
        provider="stn",
        method="POST",
        path="/api/CancelTerminateSubscription",
        mode="latency",
        latencySeconds=BOUND_SECONDS * 4,
        count=1,
    )

    sent = await bounded_http.post(f"/v1/sagas/{workflow_id}/revoke", json={})

    assert sent.status_code == 202, sent.text
    assert sent.json()["stage"] == "accepted"
    state = await wait_for_phase(client, workflow_id, "REVOKED", within=60)
    assert state["cancellationStatus"] == "DONE"
