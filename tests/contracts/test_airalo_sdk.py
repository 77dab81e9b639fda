"""Our Airalo requests against the official SDK's own code (``airalo-sdk``, pinned).

For each request the SDK signs (token, create a future order, cancel future orders) the
SDK's service code builds the same request through a recording ``HttpResource``, and its
``airalo-signature`` must equal ours byte for byte, over the same payload in the same
key order. The credentials and payloads carry ``/`` (which the SDK escapes as ``\\/``
before signing) and non-ASCII text (which it keeps), the two places signers differ.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from airalo.config import Config
from airalo.helpers.signature import Signature
from airalo.resources.http_resource import HttpResource
from airalo.services.future_order_service import FutureOrderService
from airalo.services.oauth_service import OAuthService
from pydantic import SecretStr
from temporalio.testing import ActivityEnvironment

from activities.airalo import AiraloActivities, AiraloTokens
from domain.airalo import CancelFutureOrders, CreateFutureOrder, FutureOrder

CLIENT_ID = "partner/42"
CLIENT_SECRET = "s3cr3t/Zoë+key"
HOOK = "https://partner.example/airalo/hooks?x=1&y=2"
ORDER = FutureOrder(
    request_id="A" * 25,
    package_id="kallur-digital-7days-1gb",
    quantity=2,
    description="trip to Zoë's / Köln",
    status="pending",
    due_date="2030-01-20 10:00",
    latest_cancellation_date="2030-01-19 10:00",
)
IDS = ["wPnaOiEcdyP11pEPeJ-jLhT_I", "Q2FMVdpbIAFh0RVvtjKkya8a1"]


@dataclass(frozen=True)
class Sent:
    """One request as it left a client: its signature, content type and payload."""

    signature: str
    content_type: str
    payload: dict[str, Any]


def _payload(content_type: str, body: bytes) -> dict[str, Any]:
    if content_type.startswith("application/x-www-form-urlencoded"):
        return dict(parse_qsl(body.decode()))
    parsed: dict[str, Any] = json.loads(body)
    return parsed


class RecordingHttp(HttpResource):  # type: ignore[misc]
    """The SDK's HTTP resource, recording each request and answering 200 with ``answer``."""

    def __init__(self, config: Config, answer: dict[str, Any]) -> None:
        super().__init__(config)
        self.answer = answer
        self.sent: dict[str, Sent] = {}

    def _request(self, url: str, data: bytes | None = None, method: str = "GET") -> str:
        headers = dict(self._request_headers)
        content_type = headers["Content-Type"]
        path = "/v2/" + url.removeprefix(Config.get_url(self._config))
        self.sent[path] = Sent(
            headers["airalo-signature"], content_type, _payload(content_type, data or b"")
        )
        self.code = 200
        self._reset()
        return json.dumps(self.answer)


def sdk_requests(create: dict[str, Any], cancel: dict[str, Any]) -> dict[str, Sent]:
    """What the SDK sends for the token, ``create`` and ``cancel`` payloads."""
    config = Config({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    http = RecordingHttp(config, {"data": {"access_token": "token", "request_id": "B" * 25}})
    signature = Signature(CLIENT_SECRET)
    OAuthService(config, http, signature)._request_token()
    orders = FutureOrderService(config, http, signature, "token")
    orders.create_future_order(create)
    orders.cancel_future_order(cancel)
    return http.sent


async def our_requests() -> dict[str, Sent]:
    """What our activities send to create ``ORDER`` again and to cancel ``IDS``."""
    sent: dict[str, Sent] = {}

    def airalo(request: httpx.Request) -> httpx.Response:
        content_type = request.headers["content-type"]
        sent[request.url.path] = Sent(
            request.headers["airalo-signature"],
            content_type,
            _payload(content_type, request.content),
        )
        # The SDK's own test fixture of the token answer has no expires_in.
        data = {"access_token": "token", "request_id": "B" * 25, "due_date": "2030-01-20 10:00"}
        return httpx.Response(200, json={"data": data, "meta": {"message": "success"}})

    transport = httpx.MockTransport(airalo)
    async with httpx.AsyncClient(transport=transport, base_url="https://airalo.test") as http:
        activities = AiraloActivities(
            http, AiraloTokens(http, CLIENT_ID, SecretStr(CLIENT_SECRET)), HOOK
        )
        env = ActivityEnvironment()
        await env.run(activities.create_future_order, CreateFutureOrder(order=ORDER))
        await env.run(activities.cancel_future_orders, CancelFutureOrders(request_ids=IDS))
    return sent


@pytest.fixture(scope="module")
async def ours() -> dict[str, Sent]:
    return await our_requests()


@pytest.fixture(scope="module")
def the_sdks(ours: dict[str, Sent]) -> dict[str, Sent]:
    # The SDK is handed exactly the payloads we sent: the comparison is of the signing.
    return sdk_requests(ours["/v2/future-orders"].payload, ours["/v2/cancel-future-orders"].payload)


@pytest.mark.parametrize("path", ["/v2/token", "/v2/future-orders", "/v2/cancel-future-orders"])
def test_our_signature_is_the_sdks_byte_for_byte(
    path: str, ours: dict[str, Sent], the_sdks: dict[str, Sent]
) -> None:
    assert ours[path].signature == the_sdks[path].signature
    assert list(ours[path].payload.items()) == list(the_sdks[path].payload.items())
    assert ours[path].content_type.split(";")[0] == the_sdks[path].content_type


def test_the_payloads_carry_what_the_signers_could_disagree_on(ours: dict[str, Sent]) -> None:
    token = ours["/v2/token"].payload
    assert token == {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "grant_type": "client_credentials",
    }
    created = ours["/v2/future-orders"].payload
    assert created["webhook_url"] == HOOK and created["description"] == ORDER.description
    assert ours["/v2/cancel-future-orders"].payload == {"request_ids": IDS}


def test_each_signature_checks_with_the_sdk_and_not_under_another_key(
    ours: dict[str, Sent],
) -> None:
    for sent in ours.values():
        assert Signature(CLIENT_SECRET).check_signature(sent.signature, sent.payload)
        assert not Signature("another secret").check_signature(sent.signature, sent.payload)
