"""The sandbox sends Airalo's and Rebilly's webhooks to a real local receiver.

A served sandbox (real TCP, its ticker running) with a manual clock; time moves with
``clock.advance`` and every wait polls with a deadline.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from airalo.helpers import signature as sdk

from sandbox.clock import ManualClock
from sandbox.settings import SandboxSettings
from sandbox.state import Sandbox
from sandbox.testing import SandboxAdmin, SandboxServer
from sandbox.webhooks.signing import airalo_signature
from tests.sandbox.receiver import WebhookReceiver

START = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)
DUE = START + timedelta(days=3)
SECRET = "sandbox-airalo-secret"
AIRALO_PATH = "/airalo/async-orders"
REBILLY_PATH = "/rebilly/hooks"
REBILLY_HEADERS = {"REB-APIKEY": "sk_sandbox_rebilly"}
FIRED = "future-order-fired"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def server(clock: ManualClock) -> Iterator[SandboxServer]:
    settings = SandboxSettings(
        airalo_client_id="sandbox-airalo-client",
        airalo_client_secret=SECRET,
        airalo_token_rate_limit_per_minute=100,
        rebilly_api_key="sk_sandbox_rebilly",
        rebilly_organization_id="org-sandbox",
        rebilly_webhook_url=None,
        webhook_tick_seconds=0.02,
        webhook_retry_delay_seconds=0.01,
        webhook_max_attempts=4,
        state_file=None,
    )
    with SandboxServer(settings, clock=clock) as running:
        yield running


@pytest.fixture
def admin(server: SandboxServer, receiver: WebhookReceiver) -> Iterator[SandboxAdmin]:
    with SandboxAdmin(server.base_url) as client:
        client.set_webhook_targets(airalo_url=receiver.url + AIRALO_PATH)
        yield client


@pytest.fixture
def airalo(server: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.airalo_url, trust_env=False) as client:
        token = client.post(
            "/v2/token",
            data={
                "client_id": "sandbox-airalo-client",
                "client_secret": SECRET,
                "grant_type": "client_credentials",
            },
        ).json()["data"]["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


@pytest.fixture
def rebilly(server: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.rebilly_url, headers=REBILLY_HEADERS, trust_env=False
    ) as client:
        yield client


# --------------------------------------------------------------------------- helpers


def sdk_canonical(body: bytes) -> bytes:
    """The text airalo-sdk 1.0.3 signs for a parsed payload, written out independently."""
    text = json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False)
    return text.replace("/", "\\/").encode("utf-8")


def verifies(signature: str, body: bytes, secret: str = SECRET) -> bool:
    expected = hmac.new(secret.encode(), sdk_canonical(body), hashlib.sha512).hexdigest()
    return hmac.compare_digest(expected, signature)


def create_future_order(airalo: httpx.Client, description: str, **extra: Any) -> str:
    body = {
        "package_id": "kallur-digital-7days-1gb",
        "quantity": 2,
        "due_date": DUE.strftime("%Y-%m-%d %H:%M"),
        "description": description,
        **extra,
    }
    response = airalo.post("/v2/future-orders", json=body)
    assert response.status_code == 200, response.text
    request_id: str = response.json()["data"]["request_id"]
    return request_id


def events(received: list[Any]) -> list[tuple[str, str]]:
    return [(item.json()["subscriptionId"], item.json()["eventType"]) for item in received]


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


# --------------------------------------------------------------------------- Airalo


def test_due_future_order_is_posted_once_with_the_sdk_signature(
    admin: SandboxAdmin, airalo: httpx.Client, receiver: WebhookReceiver, clock: ManualClock
) -> None:
    request_id = create_future_order(airalo, "Café/Zürich ✓ trip")

    clock.set(DUE - timedelta(minutes=1))
    admin.tick()
    assert admin.webhook_deliveries() == []

    clock.set(DUE + timedelta(minutes=1))  # the ticker fires it; nobody reads
    (item,) = receiver.wait_for(1, AIRALO_PATH)
    assert item.headers["content-type"] == "application/json"
    signature = item.headers["airalo-signature"]
    assert verifies(signature, item.body)
    assert not verifies(signature, item.body, secret="another-secret")
    payload = item.json()
    assert payload["request_id"] == request_id
    assert payload["meta"] == {"message": "success"}
    assert payload["data"]["package_id"] == "kallur-digital-7days-1gb"
    assert payload["data"]["description"] == "Café/Zürich ✓ trip"
    assert len(payload["data"]["sims"]) == payload["data"]["quantity"] == 2

    # Once: later ticks and reads do not fire it again.
    admin.tick()
    assert airalo.get("/v2/future-orders").json()["data"] == []
    (delivery,) = admin.wait_for_webhooks(1, provider="airalo")
    assert delivery["event"] == FIRED
    assert (delivery["status"], delivery["attempts"], delivery["statusCode"]) == (
        "delivered",
        1,
        200,
    )
    assert delivery["url"] == receiver.url + AIRALO_PATH
    assert delivery["body"] == payload
    assert len(receiver.received()) == 1
    assert admin.airalo_get_future_order(request_id)["status"] == "processed"


def test_fire_now_uses_the_orders_own_webhook_url(
    admin: SandboxAdmin, receiver: WebhookReceiver
) -> None:
    own = admin.airalo_seed_future_order(
        "pkg", START + timedelta(days=30), webhook_url=receiver.url + "/own"
    )
    failed = admin.airalo_seed_future_order("pkg", START + timedelta(days=30), status="failed")

    assert admin.airalo_fire(own["request_id"])["status"] == "processed"
    assert admin.airalo_fire(failed["request_id"])["status"] == "processed"

    (to_own,) = receiver.wait_for(1, "/own")
    assert to_own.json()["request_id"] == own["request_id"]
    (to_opted_in,) = receiver.wait_for(1, AIRALO_PATH)
    assert to_opted_in.json()["request_id"] == failed["request_id"]
    with pytest.raises(httpx.HTTPStatusError) as refused:
        admin.airalo_fire(own["request_id"])
    assert refused.value.response.status_code == 409


def test_order_cancelled_before_its_due_date_sends_nothing(
    admin: SandboxAdmin, airalo: httpx.Client, receiver: WebhookReceiver, clock: ManualClock
) -> None:
    cancelled = create_future_order(airalo, "cancelled")
    kept = create_future_order(airalo, "kept")
    response = airalo.post("/v2/cancel-future-orders", json={"request_ids": [cancelled]})
    assert response.status_code == 200

    clock.set(DUE + timedelta(hours=1))
    (item,) = receiver.wait_for(1)
    assert item.json()["request_id"] == kept
    admin.tick()
    deliveries = admin.wait_for_webhooks(1, provider="airalo")
    assert [d["body"]["request_id"] for d in deliveries] == [kept]
    assert len(receiver.received()) == 1


def test_default_opted_in_url_is_reserved_and_only_logged(admin: SandboxAdmin) -> None:
    admin.set_webhook_targets(airalo_url="https://partner.example/airalo/async-orders")
    order = admin.airalo_seed_future_order("pkg", START + timedelta(days=30))
    admin.airalo_fire(order["request_id"])
    (delivery,) = admin.wait_for_webhooks(1)
    assert (delivery["status"], delivery["attempts"]) == ("skipped", 0)
    assert "reserved domain" in delivery["reason"]


def test_pretty_body_verifies_only_after_canonicalisation(
    admin: SandboxAdmin, receiver: WebhookReceiver
) -> None:
    admin.configure(airalo_webhook_pretty_body=True)
    order = admin.airalo_seed_future_order("pkg/one", START + timedelta(days=30))
    admin.airalo_fire(order["request_id"])
    (item,) = receiver.wait_for(1)
    signature = item.headers["airalo-signature"]
    assert b"\n" in item.body and b"\\/" not in item.body
    raw = hmac.new(SECRET.encode(), item.body, hashlib.sha512).hexdigest()
    assert raw != signature
    assert verifies(signature, item.body)


def test_sandbox_signer_matches_the_sdk() -> None:
    """Cross-check with the official SDK itself (a dev dependency)."""
    payload = {"url": "https://a.b/c", "name": "Zürich ✓", "n": [1, 2.5, None, True]}
    assert airalo_signature("k", payload) == sdk.Signature("k").get_signature(payload)
    canonical = sdk_canonical(json.dumps(payload).encode())
    expected = hmac.new(b"k", canonical, hashlib.sha512).hexdigest()
    assert sdk.Signature("k").check_signature(expected, payload)


# --------------------------------------------------------------------------- Rebilly


def put_cancellation(rebilly: httpx.Client, cancellation_id: str, **body: Any) -> None:
    response = rebilly.put(f"/order-cancellations/{cancellation_id}", json=body)
    assert response.status_code == 201, response.text


def test_rebilly_confirm_then_churn_arrive_in_order_with_basic_auth(
    admin: SandboxAdmin, rebilly: httpx.Client, receiver: WebhookReceiver, clock: ManualClock
) -> None:
    admin.set_webhook_targets(
        rebilly_url=receiver.url + REBILLY_PATH,
        rebilly_username="hook-user",
        rebilly_password="pa:ss wörd",
    )
    body = {"orderId": "O-1", "churnTime": "2030-01-16T12:00:00Z"}
    put_cancellation(rebilly, "c-1", **body)
    (canceled,) = receiver.wait_for(1, REBILLY_PATH)
    # An idempotent re-create (a retried PUT) changes nothing and sends nothing.
    assert rebilly.put("/order-cancellations/c-1", json=body).status_code == 200

    clock.set(START + timedelta(days=2))  # past the churn time: the ticker churns it
    received = receiver.wait_for(2, REBILLY_PATH)
    assert events(received) == [("O-1", "subscription-canceled"), ("O-1", "subscription-churned")]
    for item in received:
        assert item.headers["authorization"] == basic("hook-user", "pa:ss wörd")
        assert "airalo-signature" not in item.headers
    subscription = canceled.json()["_embedded"]["subscription"]
    assert subscription["id"] == "O-1"
    assert subscription["status"] == "canceled"
    assert subscription["endTime"] == "2030-01-16T12:00:00Z"
    assert received[1].json()["_embedded"]["subscription"]["status"] == "churned"
    assert canceled.json()["_links"][0]["rel"] == "subscription"

    deliveries = admin.wait_for_webhooks(2, provider="rebilly")
    assert [d["event"] for d in deliveries] == ["subscription-canceled", "subscription-churned"]
    assert {d["headers"]["authorization"] for d in deliveries} == {"Basic ***"}
    assert "hook-user" not in json.dumps(admin.webhook_deliveries())


def test_rebilly_reactivations(
    admin: SandboxAdmin, rebilly: httpx.Client, receiver: WebhookReceiver
) -> None:
    admin.set_webhook_targets(rebilly_url=receiver.url + REBILLY_PATH, rebilly_username=None)
    # Confirmed (not yet churned) → reactivated: the cancellation is revoked.
    put_cancellation(rebilly, "c-a", orderId="O-A", churnTimePolicy="at-next-renewal")
    assert rebilly.post("/order-reactivations", json={"orderId": "O-A"}).status_code == 201
    # Churned at once → reactivated: the order restarts.
    put_cancellation(rebilly, "c-b", orderId="O-B", churnTimePolicy="now")
    assert rebilly.post("/order-reactivations", json={"orderId": "O-B"}).status_code == 201

    received = receiver.wait_for(5, REBILLY_PATH)
    assert events(received) == [
        ("O-A", "subscription-canceled"),
        ("O-A", "subscription-reactivated"),
        ("O-B", "subscription-canceled"),
        ("O-B", "subscription-churned"),
        ("O-B", "subscription-reactivated"),
    ]
    assert received[1].json()["_embedded"]["subscription"]["status"] == "active"
    assert "authorization" not in received[0].headers  # no username: no Basic auth


def test_a_draft_sends_nothing_until_it_is_confirmed(
    admin: SandboxAdmin, rebilly: httpx.Client, receiver: WebhookReceiver
) -> None:
    admin.set_webhook_targets(rebilly_url=receiver.url + REBILLY_PATH)
    put_cancellation(rebilly, "c-d", orderId="O-D", status="draft")
    admin.tick()
    assert admin.webhook_deliveries() == []
    body = {"orderId": "O-D", "status": "confirmed", "churnTimePolicy": "at-next-renewal"}
    assert rebilly.put("/order-cancellations/c-d", json=body).status_code == 200
    (item,) = receiver.wait_for(1, REBILLY_PATH)
    assert events([item]) == [("O-D", "subscription-canceled")]
    admin.tick()
    assert len(admin.wait_for_webhooks(1)) == 1  # churns only at the next renewal


def test_no_rebilly_target_means_no_delivery(admin: SandboxAdmin, rebilly: httpx.Client) -> None:
    put_cancellation(rebilly, "c-x", orderId="O-X", churnTimePolicy="now")
    admin.tick()
    assert admin.webhook_deliveries(provider="rebilly") == []


# --------------------------------------------------------------------------- delivery


def test_failing_receiver_is_retried_and_logged(
    admin: SandboxAdmin, receiver: WebhookReceiver
) -> None:
    receiver.script(500, 503)
    order = admin.airalo_seed_future_order("pkg", START + timedelta(days=30))
    admin.airalo_fire(order["request_id"])
    (delivery,) = admin.wait_for_webhooks(1)
    assert delivery["status"] == "delivered"
    assert [a["statusCode"] for a in delivery["attemptLog"]] == [500, 503, 200]
    bodies = {item.body for item in receiver.received()}
    assert len(receiver.received()) == 3 and len(bodies) == 1  # the same message each time


def test_delivery_gives_up_after_the_configured_attempts(
    admin: SandboxAdmin, receiver: WebhookReceiver
) -> None:
    admin.configure(webhook_max_attempts=3)
    receiver.script(default_status=500)
    order = admin.airalo_seed_future_order("pkg", START + timedelta(days=30))
    admin.airalo_fire(order["request_id"])
    (delivery,) = admin.wait_for_webhooks(1)
    assert (delivery["status"], delivery["attempts"]) == ("failed", 3)
    assert "gave up after 3 attempts" in delivery["reason"]
    assert len(receiver.received()) == 3


def test_unreachable_receiver_is_logged_as_failed(admin: SandboxAdmin) -> None:
    admin.configure(webhook_max_attempts=2)
    admin.set_webhook_targets(airalo_url="http://127.0.0.1:9/closed")  # discard port
    order = admin.airalo_seed_future_order("pkg", START + timedelta(days=30))
    admin.airalo_fire(order["request_id"])
    (delivery,) = admin.wait_for_webhooks(1)
    assert (delivery["status"], delivery["attempts"]) == ("failed", 2)
    assert all(a["statusCode"] is None and a["error"] for a in delivery["attemptLog"])


def test_duplicate_fault_delivers_twice(admin: SandboxAdmin, receiver: WebhookReceiver) -> None:
    admin.add_webhook_fault(mode="duplicate", provider="airalo", count=1)
    first = admin.airalo_seed_future_order("pkg", START + timedelta(days=30))
    second = admin.airalo_seed_future_order("pkg", START + timedelta(days=31))
    admin.airalo_fire(first["request_id"])
    twice = receiver.wait_for(2)
    assert twice[0].body == twice[1].body
    assert twice[0].headers["airalo-signature"] == twice[1].headers["airalo-signature"]
    assert twice[0].json()["request_id"] == first["request_id"]

    admin.airalo_fire(second["request_id"])  # the fault's one shot is used up
    received = receiver.wait_for(3)
    deliveries = admin.wait_for_webhooks(3)
    assert [(d["copy"], d["status"]) for d in deliveries] == [
        (1, "delivered"),
        (2, "delivered"),
        (1, "delivered"),
    ]
    assert [item.json()["request_id"] for item in received][2] == second["request_id"]
    (fault,) = admin.webhook_faults()
    assert (fault["remaining"], fault["fired"]) == (0, 1)


def test_fail_and_drop_faults(admin: SandboxAdmin, receiver: WebhookReceiver) -> None:
    admin.add_webhook_fault(mode="drop", event=FIRED, count=1)
    admin.add_webhook_fault(mode="fail", failAttempts=2, count=1)
    dropped = admin.airalo_seed_future_order("pkg", START + timedelta(days=30))
    retried = admin.airalo_seed_future_order("pkg", START + timedelta(days=31))
    admin.airalo_fire(dropped["request_id"])
    admin.airalo_fire(retried["request_id"])

    (item,) = receiver.wait_for(1)
    assert item.json()["request_id"] == retried["request_id"]
    lost, delivered = admin.wait_for_webhooks(2)
    assert (lost["status"], lost["attempts"]) == ("dropped", 0)
    assert delivered["status"] == "delivered"
    assert [a["error"] is not None for a in delivered["attemptLog"]] == [True, True, False]
    assert len(receiver.received()) == 1


def test_clear_and_reset_forget_deliveries_and_faults(
    admin: SandboxAdmin, receiver: WebhookReceiver
) -> None:
    order = admin.airalo_seed_future_order("pkg", START + timedelta(days=30))
    admin.airalo_fire(order["request_id"])
    admin.wait_for_webhooks(1)
    admin.clear_webhooks()
    assert admin.webhook_deliveries() == []
    admin.add_webhook_fault(mode="drop")
    admin.reset()
    assert admin.webhook_faults() == []
    assert admin.webhook_deliveries() == []


def test_config_hides_the_rebilly_webhook_password(admin: SandboxAdmin) -> None:
    config = admin.set_webhook_targets(
        rebilly_url="http://127.0.0.1:1/x", rebilly_username="u", rebilly_password="secret"
    )
    assert config["rebillyWebhookUrl"] == "http://127.0.0.1:1/x"
    assert config["rebillyWebhookUsername"] == "u"
    assert "rebillyWebhookPassword" not in config


async def test_in_process_app_fires_on_read_without_a_ticker(
    client: httpx.AsyncClient, state: Sandbox, clock: ManualClock, receiver: WebhookReceiver
) -> None:
    """``create_app`` under ``httpx.ASGITransport`` runs no lifespan: a read fires it."""
    seed = {"package_id": "pkg", "due_date": "2030-01-16 12:00", "webhook_url": receiver.url}
    seeded = (await client.post("/_sandbox/airalo/future-orders", json=seed)).json()
    clock.advance(days=2)
    path = f"/_sandbox/airalo/future-orders/{seeded['request_id']}"
    try:
        assert (await client.get(path)).json()["status"] == "processed"
        (item,) = await asyncio.to_thread(receiver.wait_for, 1)
        assert item.json()["request_id"] == seeded["request_id"]
        assert verifies(item.headers["airalo-signature"], item.body)
    finally:
        state.webhooks.close()
