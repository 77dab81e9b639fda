"""Airalo: tokens and their rate limit, future orders, cancellation rules."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from airalo.helpers.signature import Signature

from sandbox.clock import ManualClock
from tests.sandbox.conftest import START

TOKEN = "/airalo/v2/token"
FUTURE_ORDERS = "/airalo/v2/future-orders"
CANCEL = "/airalo/v2/cancel-future-orders"
SEED = "/_sandbox/airalo/future-orders"
CREDENTIALS = {
    "client_id": "sandbox-airalo-client",
    "client_secret": "sandbox-airalo-secret",
    "grant_type": "client_credentials",
}
UNAUTHORIZED = {"data": [], "meta": {"message": "This action is unauthorized."}}


def due(delta: timedelta) -> str:
    return (START + delta).strftime("%Y-%m-%d %H:%M")


async def token_headers(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post(TOKEN, data=CREDENTIALS)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['data']['access_token']}"}


@pytest.fixture
async def auth(client: httpx.AsyncClient) -> dict[str, str]:
    return await token_headers(client)


async def seed(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post(SEED, json={"package_id": "pkg-1", **body})
    assert response.status_code == 200, response.text
    order: dict[str, Any] = response.json()
    return order


async def internal(client: httpx.AsyncClient, request_id: str) -> dict[str, Any]:
    response = await client.get(f"{SEED}/{request_id}")
    assert response.status_code == 200
    order: dict[str, Any] = response.json()
    return order


def validation(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["meta"] == {"message": "the parameter is invalid"}
    data: dict[str, str] = body["data"]
    return data


# ------------------------------------------------------------------ tokens


async def test_token_is_issued_for_valid_credentials(client: httpx.AsyncClient) -> None:
    response = await client.post(TOKEN, data=CREDENTIALS)
    assert response.status_code == 200
    body = response.json()
    assert body["meta"] == {"message": "success"}
    assert body["data"]["token_type"] == "Bearer"
    assert body["data"]["expires_in"] == 86400
    assert len(body["data"]["access_token"]) >= 32


async def test_wrong_credentials(client: httpx.AsyncClient) -> None:
    response = await client.post(TOKEN, data={**CREDENTIALS, "client_secret": "nope"})
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


async def test_missing_token_fields(client: httpx.AsyncClient) -> None:
    response = await client.post(
        TOKEN, data={"client_secret": "x", "grant_type": "client_credentials"}
    )
    assert response.json() == {
        "data": {"client_id": "The client id field is required."},
        "meta": {"message": "the parameter is invalid"},
    }
    assert response.status_code == 422
    everything = validation(await client.post(TOKEN, data={}))
    assert set(everything) == {"client_id", "client_secret", "grant_type"}
    wrong_grant = validation(await client.post(TOKEN, data={**CREDENTIALS, "grant_type": "x"}))
    assert wrong_grant == {"grant_type": "The selected grant type is invalid."}


async def test_client_secret_is_masked_in_the_call_log(client: httpx.AsyncClient) -> None:
    await client.post(TOKEN, data=CREDENTIALS)
    (call,) = (await client.get("/_sandbox/calls", params={"path": "/v2/token"})).json()["calls"]
    assert call["provider"] == "airalo"
    assert call["requestBody"] == {**CREDENTIALS, "client_secret": "***"}


async def test_token_endpoint_is_rate_limited_per_sliding_minute(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    for second in range(5):
        clock.set(START + timedelta(seconds=second * 10))
        response = await client.post(TOKEN, data=CREDENTIALS if second else {})
        assert response.status_code in (200, 422)  # failed attempts count too
    limited = await client.post(TOKEN, data=CREDENTIALS)
    assert limited.status_code == 429
    assert limited.json() == {"message": "Too Many Attempts."}
    assert limited.headers["Retry-After"] == "20"  # the first attempt leaves the window at +60 s
    clock.set(START + timedelta(seconds=60))
    assert (await client.post(TOKEN, data=CREDENTIALS)).status_code == 200
    assert (await client.post(TOKEN, data=CREDENTIALS)).status_code == 429


async def test_tokens_expire(
    client: httpx.AsyncClient, clock: ManualClock, auth: dict[str, str]
) -> None:
    assert (await client.get(FUTURE_ORDERS, headers=auth)).status_code == 200
    clock.advance(seconds=86399)
    assert (await client.get(FUTURE_ORDERS, headers=auth)).status_code == 200
    clock.advance(seconds=1)
    expired = await client.get(FUTURE_ORDERS, headers=auth)
    assert expired.status_code == 401
    assert expired.json() == UNAUTHORIZED


async def test_revoked_tokens_are_rejected(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    revoked = await client.post("/_sandbox/airalo/revoke-tokens")
    assert revoked.json() == {"revoked": 1}
    assert (await client.get(FUTURE_ORDERS, headers=auth)).status_code == 401
    fresh = await token_headers(client)
    assert (await client.get(FUTURE_ORDERS, headers=fresh)).status_code == 200


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}]
)
@pytest.mark.parametrize(
    ("method", "path"), [("GET", FUTURE_ORDERS), ("POST", FUTURE_ORDERS), ("POST", CANCEL)]
)
async def test_protected_routes_need_a_valid_token(
    client: httpx.AsyncClient, headers: dict[str, str], method: str, path: str
) -> None:
    response = await client.request(method, path, json={}, headers=headers)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


# ------------------------------------------------------------------ create


async def test_create_future_order(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    body = {
        "package_id": "kallur-digital-7days-1gb",
        "quantity": 2,
        "due_date": "2030-01-20 10:00",
        "description": "wf-42",
        "webhook_url": "https://example.test/hook",
        "to_email": "a@example.test",
        "sharing_option": ["link", "pdf"],
        "copy_address": ["b@example.test"],
    }
    response = await client.post(FUTURE_ORDERS, json=body, headers=auth)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{25}", data["request_id"])
    assert data == {
        "request_id": data["request_id"],
        "due_date": "2030-01-20 10:00",
        "latest_cancellation_date": "2030-01-19 10:00",
        "quantity": 2,
        "package_id": "kallur-digital-7days-1gb",
        "description": "wf-42",
    }
    assert response.json()["meta"] == {"message": "success"}
    stored = await internal(client, data["request_id"])
    assert stored["status"] == "pending"
    assert stored["options"]["sharing_option"] == ["link", "pdf"]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"package_id": None}, "package_id", "The package id field is required."),
        ({"quantity": None}, "quantity", "The quantity field is required."),
        ({"quantity": 0}, "quantity", "The quantity field must be between 1 and 50."),
        ({"quantity": 51}, "quantity", "The quantity field must be between 1 and 50."),
        ({"quantity": "two"}, "quantity", "The quantity field must be an integer."),
        ({"due_date": None}, "due_date", "The due date field is required."),
        (
            {"due_date": "2030-01-20T10:00:00Z"},
            "due_date",
            "The due date field must match the format Y-m-d H:i.",
        ),
        (
            {"due_date": "2030-01-16 23:59"},
            "due_date",
            "The due date must be a date from the day after tomorrow (UTC): "
            "2030-01-17 00:00 or later.",
        ),
        (
            {"due_date": "2031-01-15 12:01"},
            "due_date",
            "The due date must not be more than 1 year in the future.",
        ),
        (
            {"sharing_option": ["fax"]},
            "sharing_option.0",
            "The selected sharing_option.0 is invalid.",
        ),
        (
            {"to_email": "a@example.test"},
            "sharing_option",
            "The sharing option field is required when to email is present.",
        ),
        ({"to_email": "nope", "sharing_option": ["link"]}, "to_email", None),
        ({"webhook_url": "ftp://x"}, "webhook_url", None),
        ({"copy_address": ["x"]}, "copy_address.0", None),
    ],
)
async def test_create_validation(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    changes: dict[str, Any],
    field: str,
    message: str | None,
) -> None:
    body = {"package_id": "pkg", "quantity": 1, "due_date": "2030-01-20 10:00", **changes}
    body = {key: value for key, value in body.items() if value is not None}
    errors = validation(await client.post(FUTURE_ORDERS, json=body, headers=auth))
    assert list(errors) == [field]
    if message is not None:
        assert errors[field] == message


async def test_due_date_bounds_are_inclusive(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for due_date in ("2030-01-17 12:00", "2031-01-15 12:00"):
        body = {"package_id": "pkg", "quantity": 1, "due_date": due_date}
        assert (await client.post(FUTURE_ORDERS, json=body, headers=auth)).status_code == 200


async def test_lead_time_is_from_the_day_after_tomorrow_utc(
    client: httpx.AsyncClient, auth: dict[str, str], clock: ManualClock
) -> None:
    clock.advance(hours=11, minutes=59)  # 2030-01-15 23:59 UTC
    body = {"package_id": "pkg", "quantity": 1, "due_date": "2030-01-17 00:00"}
    assert (await client.post(FUTURE_ORDERS, json=body, headers=auth)).status_code == 200
    clock.advance(minutes=1)  # a new day: 2030-01-17 is now tomorrow
    auth = await token_headers(client)
    errors = validation(await client.post(FUTURE_ORDERS, json=body, headers=auth))
    assert list(errors) == ["due_date"]


async def test_create_needs_a_webhook_unless_the_partner_opted_in(
    client: httpx.AsyncClient, auth: dict[str, str], state: Any
) -> None:
    body = {"package_id": "pkg", "quantity": 1, "due_date": "2030-01-20 10:00"}
    assert (await client.post(FUTURE_ORDERS, json=body, headers=auth)).status_code == 200
    state.context.settings.airalo_opted_in_webhook_url = None
    errors = validation(await client.post(FUTURE_ORDERS, json=body, headers=auth))
    assert errors == {
        "webhook_url": (
            "The webhook url field is required when no async_orders notification URL is opted in."
        )
    }
    with_hook = {**body, "webhook_url": "https://partner.example/hook"}
    created = await client.post(FUTURE_ORDERS, json=with_hook, headers=auth)
    assert created.status_code == 200
    stored = await internal(client, created.json()["data"]["request_id"])
    assert stored["options"] == {"webhook_url": "https://partner.example/hook"}


# ------------------------------------------------------------------ list


async def test_list_shows_only_pending_orders_unless_a_status_is_given(
    client: httpx.AsyncClient, auth: dict[str, str], clock: ManualClock
) -> None:
    soon = await seed(client, due_date=due(timedelta(hours=1)), description="soon")
    later = await seed(client, due_date=due(timedelta(days=5)), quantity=3)
    failed = await seed(client, due_date=due(timedelta(hours=-1)), status="failed")
    retry = await seed(client, due_date=due(timedelta(days=4)), status="retry")
    await seed(client, due_date=due(timedelta(days=3)), status="cancelled")
    await seed(client, due_date=due(timedelta(days=3)), status="processed")

    response = await client.get(FUTURE_ORDERS, headers=auth)
    assert response.status_code == 200
    body = response.json()
    assert [item["request_id"] for item in body["data"]] == [
        soon["request_id"],
        later["request_id"],
    ]
    assert body["meta"] == {"message": "success", "current_page": 1, "last_page": 1, "total": 2}
    assert body["data"][1] == {
        "request_id": later["request_id"],
        "quantity": 3,
        "description": None,
        "status": "pending",
        "package_id": "pkg-1",
        "due_date": "2030-01-20 12:00",
        "latest_cancellation_date": "2030-01-19 12:00",
    }
    for status, order in (("failed", failed), ("retry", retry)):
        listed = (await client.get(FUTURE_ORDERS, params={"status": status}, headers=auth)).json()
        assert [(i["request_id"], i["status"]) for i in listed["data"]] == [
            (order["request_id"], status)
        ]

    # An order fires at its due date and then no longer appears; failed ones stay.
    clock.advance(hours=1)
    remaining = (await client.get(FUTURE_ORDERS, headers=auth)).json()["data"]
    assert soon["request_id"] not in [item["request_id"] for item in remaining]
    fired = await internal(client, soon["request_id"])
    assert (fired["status"], fired["processedAt"]) == ("processed", "2030-01-15T13:00:00.000Z")
    assert (await internal(client, failed["request_id"]))["status"] == "failed"


async def test_admin_moves_an_order_to_failed_or_retry(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    order = await seed(client, due_date=due(timedelta(days=3)))
    path = f"/_sandbox/airalo/future-orders/{order['request_id']}/status"
    moved = await client.post(path, json={"status": "retry"})
    assert moved.status_code == 200 and moved.json()["status"] == "retry"
    assert (await client.get(FUTURE_ORDERS, headers=auth)).json()["data"] == []
    unknown = await client.post(
        "/_sandbox/airalo/future-orders/nope/status", json={"status": "failed"}
    )
    assert unknown.status_code == 404


async def test_list_filters_and_pages(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    ids = [
        (await seed(client, due_date=due(timedelta(days=day))))["request_id"]
        for day in (3, 4, 5, 6)
    ]
    failed = await seed(client, due_date=due(timedelta(days=6)), status="failed")

    async def listed(**params: Any) -> dict[str, Any]:
        response = await client.get(FUTURE_ORDERS, params=params, headers=auth)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    page = await listed(limit=3, page=2)
    assert [item["request_id"] for item in page["data"]] == [ids[3]]
    assert (page["meta"]["current_page"], page["meta"]["last_page"]) == (2, 2)
    assert [i["request_id"] for i in (await listed(status="failed"))["data"]] == [
        failed["request_id"]
    ]
    assert (await listed(status="retry"))["data"] == []
    window = await listed(from_due_date="2030-01-19", to_due_date="2030-01-19 12:00")
    assert [item["request_id"] for item in window["data"]] == [ids[1]]
    whole_day = await listed(to_due_date="2030-01-18")
    assert [item["request_id"] for item in whole_day["data"]] == [ids[0]]


@pytest.mark.parametrize(
    "params", [{"status": "cancelled"}, {"limit": "0"}, {"page": "x"}, {"from_due_date": "soon"}]
)
async def test_list_validation(
    client: httpx.AsyncClient, auth: dict[str, str], params: dict[str, str]
) -> None:
    errors = validation(await client.get(FUTURE_ORDERS, params=params, headers=auth))
    assert list(errors) == list(params)


# ------------------------------------------------------------------ cancel


async def cancel(
    client: httpx.AsyncClient, auth: dict[str, str], request_ids: Any
) -> httpx.Response:
    return await client.post(CANCEL, json={"request_ids": request_ids}, headers=auth)


async def test_cancel_future_orders(
    client: httpx.AsyncClient, auth: dict[str, str], clock: ManualClock
) -> None:
    first = (await seed(client, due_date=due(timedelta(days=3))))["request_id"]
    second = (await seed(client, due_date=due(timedelta(days=4))))["request_id"]
    clock.advance(minutes=1)
    response = await cancel(client, auth, [first, second])
    assert response.status_code == 200
    assert response.json() == {
        "data": [],
        "meta": {"message": "Future orders cancelled successfully"},
    }
    stored = await internal(client, first)
    assert (stored["status"], stored["cancelledAt"]) == ("cancelled", "2030-01-15T12:01:00.000Z")
    assert (await client.get(FUTURE_ORDERS, headers=auth)).json()["data"] == []
    again = validation(await cancel(client, auth, [first]))
    assert again == {
        "request_ids.0": f"Request ID: {first} is already processed and can not be cancelled."
    }


@pytest.mark.parametrize("request_ids", [None, [], "abc", {"a": 1}])
async def test_request_ids_are_required(
    client: httpx.AsyncClient, auth: dict[str, str], request_ids: Any
) -> None:
    assert validation(await cancel(client, auth, request_ids)) == {
        "request_ids": "The request ids field is required."
    }


async def test_at_most_ten_request_ids(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    ids = [(await seed(client, due_date=due(timedelta(days=3))))["request_id"] for _ in range(11)]
    assert validation(await cancel(client, auth, ids)) == {
        "request_ids": "The request ids field must not have more than 10 items."
    }
    assert (await cancel(client, auth, ids[:10])).status_code == 200


async def test_every_invalid_index_is_reported_and_nothing_is_cancelled(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    valid = (await seed(client, due_date=due(timedelta(days=3))))["request_id"]
    duplicate = (await seed(client, due_date=due(timedelta(days=3))))["request_id"]
    processed = (await seed(client, due_date=due(timedelta(hours=-2))))["request_id"]
    cancelled = (await seed(client, due_date=due(timedelta(days=3)), status="cancelled"))[
        "request_id"
    ]
    too_late = (await seed(client, due_date=due(timedelta(hours=23, minutes=59))))["request_id"]
    unknown = "U" * 25
    request_ids = [valid, duplicate, "short", unknown, processed, cancelled, too_late, duplicate, 7]
    errors = validation(await cancel(client, auth, request_ids))
    assert errors == {
        "request_ids.1": "The request_ids.1 field has a duplicate value.",
        "request_ids.2": "The request_ids.2 field must be 25 characters.",
        "request_ids.3": f"Request ID: {unknown} does not exist.",
        "request_ids.4": f"Request ID: {processed} is already processed and can not be cancelled.",
        "request_ids.5": f"Request ID: {cancelled} is already processed and can not be cancelled.",
        "request_ids.6": (
            f"Request ID: {too_late} can not be cancelled less than 24 hours before its due date."
        ),
        "request_ids.7": "The request_ids.7 field has a duplicate value.",
        "request_ids.8": "The request_ids.8 field must be a string.",
    }
    assert (await internal(client, valid))["status"] == "pending"
    assert (await internal(client, duplicate))["status"] == "pending"


async def test_partial_cancel_knob_cancels_the_ids_it_does_not_name(
    client: httpx.AsyncClient, auth: dict[str, str], state: Any
) -> None:
    state.context.settings.airalo_partial_cancel = True
    valid = (await seed(client, due_date=due(timedelta(days=3))))["request_id"]
    unknown = "U" * 25
    errors = validation(await cancel(client, auth, [valid, unknown]))
    assert errors == {"request_ids.1": f"Request ID: {unknown} does not exist."}
    assert (await internal(client, valid))["status"] == "cancelled"


@pytest.mark.parametrize("status", ["failed", "retry"])
async def test_failed_and_retry_orders_can_be_cancelled(
    client: httpx.AsyncClient, auth: dict[str, str], status: str
) -> None:
    order = (await seed(client, due_date=due(timedelta(days=3)), status=status))["request_id"]
    assert (await cancel(client, auth, [order])).status_code == 200
    assert (await internal(client, order))["status"] == "cancelled"


async def test_business_error_fault_answers_code_and_reason(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    order = (await seed(client, due_date=due(timedelta(days=3))))["request_id"]
    business = {"code": 13, "reason": "The operator is under maintenance."}
    fault = {"provider": "airalo", "path": "/v2/cancel-future-orders", "mode": "error"}
    await client.post("/_sandbox/faults", json={**fault, "status": 422, "body": business})
    refused = await cancel(client, auth, [order])
    assert (refused.status_code, refused.json()) == (422, business)
    assert (await internal(client, order))["status"] == "pending"


async def test_24_hour_rule_boundary(
    client: httpx.AsyncClient, auth: dict[str, str], clock: ManualClock
) -> None:
    on_time = (await seed(client, due_date=due(timedelta(days=2))))["request_id"]
    late = (await seed(client, due_date=due(timedelta(days=2))))["request_id"]
    clock.advance(days=1)  # exactly latest_cancellation_date: still allowed
    auth = await token_headers(client)  # the first token has just expired
    assert (await cancel(client, auth, [on_time])).status_code == 200
    clock.advance(seconds=1)
    assert list(validation(await cancel(client, auth, [late]))) == ["request_ids.0"]


async def test_lost_cancel_response_then_retry_says_already_processed(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    request_id = (await seed(client, due_date=due(timedelta(days=3))))["request_id"]
    await client.post(
        "/_sandbox/faults",
        json={"provider": "airalo", "path": "/v2/cancel-future-orders", "mode": "drop_response"},
    )
    lost = await cancel(client, auth, [request_id])
    assert (lost.status_code, lost.text) == (504, "upstream response lost")
    assert (await internal(client, request_id))["status"] == "cancelled"
    await client.delete("/_sandbox/faults")
    retry = validation(await cancel(client, auth, [request_id]))
    assert "already processed" in retry["request_ids.0"]


# ------------------------------------------------------------------ admin and faults


async def test_admin_seed_and_lookup_errors(client: httpx.AsyncClient) -> None:
    order = await seed(client, request_id="custom-id", due_date="2030-01-15T18:00:00+02:00")
    assert order["due_date"] == "2030-01-15 16:00"
    assert order["createdAt"] == "2030-01-15T12:00:00.000Z"
    assert order["cancelledAt"] is None
    duplicate = await client.post(
        SEED, json={"request_id": "custom-id", "package_id": "p", "due_date": "2030-01-16 00:00"}
    )
    assert duplicate.status_code == 409
    bad_date = await client.post(SEED, json={"package_id": "p", "due_date": "whenever"})
    assert bad_date.status_code == 422
    assert (await client.get(f"{SEED}/missing")).status_code == 404


async def test_rate_limit_and_error_faults_in_airalo_shape(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await client.post(
        "/_sandbox/faults",
        json={"provider": "airalo", "mode": "rate_limit", "retryAfterSeconds": 7, "count": 1},
    )
    await client.post(
        "/_sandbox/faults", json={"provider": "airalo", "mode": "error", "status": 502, "count": 1}
    )
    limited = await client.get(FUTURE_ORDERS, headers=auth)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "7")
    assert limited.json() == {"message": "Too Many Attempts."}
    failed = await client.get(FUTURE_ORDERS, headers=auth)
    assert failed.status_code == 502
    assert failed.json()["data"] == []
    assert "message" in failed.json()["meta"]


# ------------------------------------------------------------------ required signature


SECRET = "sandbox-airalo-secret"


def sdk_signed(payload: dict[str, Any], secret: str = SECRET) -> dict[str, str]:
    """The header Airalo's official SDK sends with ``payload``."""
    return {"airalo-signature": Signature(secret).get_signature(payload)}


async def test_a_required_signature_is_checked_as_the_sdk_signs(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    assert (
        await client.post("/_sandbox/config", json={"airalo_require_signature": True})
    ).is_success
    order = (await seed(client, due_date=due(timedelta(days=3))))["request_id"]
    create = {"package_id": "pkg-1", "quantity": 1, "due_date": "2030-01-20 10:00"}
    create["webhook_url"] = "https://example.test/hook"  # a "/" the SDK escapes as "\/"

    # The SDK's own requests: the token as a form, the others as its spaced JSON.
    token = await client.post(TOKEN, data=CREDENTIALS, headers=sdk_signed(CREDENTIALS))
    assert token.status_code == 200, token.text
    auth = {"Authorization": f"Bearer {token.json()['data']['access_token']}"}
    created = await client.post(
        FUTURE_ORDERS,
        content=json.dumps(create),
        headers={**auth, "Content-Type": "application/json", **sdk_signed(create)},
    )
    cancelled = await client.post(
        CANCEL,
        json={"request_ids": [order]},
        headers={**auth, **sdk_signed({"request_ids": [order]})},
    )
    assert (created.status_code, cancelled.status_code) == (200, 200), created.text
    # Reads carry no body and no signature.
    assert (await client.get(FUTURE_ORDERS, headers=auth)).status_code == 200


async def test_a_missing_or_wrong_signature_is_the_documented_401_and_changes_nothing(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await client.post("/_sandbox/config", json={"airalo_require_signature": True})
    order = (await seed(client, due_date=due(timedelta(days=3))))["request_id"]
    cancel_body = {"request_ids": [order]}
    refused = [
        await client.post(TOKEN, data=CREDENTIALS),
        await client.post(TOKEN, data=CREDENTIALS, headers=sdk_signed(CREDENTIALS, "other")),
        await client.post(CANCEL, json=cancel_body, headers=auth),
        await client.post(
            CANCEL, json=cancel_body, headers={**auth, **sdk_signed({"request_ids": ["x" * 25]})}
        ),
        await client.post(
            CANCEL, json=cancel_body, headers={**auth, **sdk_signed(cancel_body, "other")}
        ),
    ]
    assert [(r.status_code, r.json()) for r in refused] == [(401, UNAUTHORIZED)] * 5
    assert (await internal(client, order))["status"] == "pending"


async def test_signatures_are_not_required_by_default(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    # Airalo's documented examples send none.
    order = (await seed(client, due_date=due(timedelta(days=3))))["request_id"]
    assert (await cancel(client, auth, [order])).status_code == 200
