"""Rebilly: auth, validation, PUT idempotency, conflicts, lifecycle, reactivation, proration.

Refusals follow the documented status codes: PUT/POST/PATCH document 422 (not 409);
DELETE and ``POST /order-reactivations`` document 409.
"""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest

from sandbox.clock import ManualClock
from sandbox.state import Sandbox
from tests.sandbox.conftest import REBILLY_BASE, REBILLY_HEADERS, START

CANCELLATIONS = REBILLY_BASE + "/order-cancellations"
REACTIVATIONS = REBILLY_BASE + "/order-reactivations"
LATER = "2030-02-01T00:00:00Z"


async def put(client: httpx.AsyncClient, cancellation_id: str, **body: Any) -> httpx.Response:
    return await client.put(
        f"{CANCELLATIONS}/{cancellation_id}", json=body, headers=REBILLY_HEADERS
    )


async def get(client: httpx.AsyncClient, cancellation_id: str) -> httpx.Response:
    return await client.get(f"{CANCELLATIONS}/{cancellation_id}", headers=REBILLY_HEADERS)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    # Rebilly documents its problem details as application/json.
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def invalid_fields(response: httpx.Response) -> dict[str, str]:
    body = problem(response, 422)
    return {item["field"]: item["message"] for item in body["invalidFields"]}


# ------------------------------------------------------------------ auth


@pytest.mark.parametrize("headers", [{}, {"REB-APIKEY": "sk_wrong"}])
async def test_missing_or_wrong_api_key(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await client.get(CANCELLATIONS, headers=headers)
    assert problem(response, 401) == {
        "type": "https://www.rebilly.com/catalog/all/section/errors/unauthorized",
        "title": "Unauthorized",
        "status": 401,
        "detail": "Invalid or missing REB-APIKEY header",
        "instance": "/rebilly/organizations/org-sandbox/order-cancellations",
    }


async def test_unknown_organization(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/rebilly/organizations/org-other/order-cancellations", headers=REBILLY_HEADERS
    )
    body = problem(response, 404)
    assert body["detail"] == "Organization org-other not found"
    assert body["type"].endswith("/not-found")


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "orderId"),
        ({"orderId": ""}, "orderId"),
        ({"orderId": 7}, "orderId"),
        ({"orderId": "o", "churnTimePolicy": "later"}, "churnTimePolicy"),
        ({"orderId": "o", "status": "completed"}, "status"),
        # Nothing to revoke under an id that holds no cancellation.
        ({"orderId": "o", "status": "revoked"}, "status"),
        ({"orderId": "o", "reason": "bored"}, "reason"),
        ({"orderId": "o", "canceledBy": "robot"}, "canceledBy"),
        ({"orderId": "o", "description": "d" * 256}, "description"),
        ({"orderId": "o", "churnTime": "next week"}, "churnTime"),
        ({"orderId": "o", "prorated": "yes"}, "prorated"),
        ({"orderId": "o", "lineItems": {}}, "lineItems"),
        ({"orderId": "o", "lineItems": ["x"]}, "lineItems.0"),
        ({"orderId": "o" * 51}, "orderId"),
    ],
)
async def test_invalid_cancellation_fields(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    fields = invalid_fields(await put(client, "c-1", **body))
    assert list(fields) == [field]
    assert (await get(client, "c-1")).status_code == 404


async def test_line_item_rules(client: httpx.AsyncClient) -> None:
    items = [
        {"type": "refund", "unitPriceAmount": "5", "unitPriceCurrency": "EURO", "quantity": 0},
        {},
        {"type": "debit", "unitPriceAmount": 1, "unitPriceCurrency": "EUR", "quantity": 1.5},
    ]
    fields = invalid_fields(await put(client, "c-1", orderId="o", lineItems=items))
    # Rebilly documents dot notation for nested fields.
    assert set(fields) == {
        "lineItems.0.type",
        "lineItems.0.unitPriceAmount",
        "lineItems.0.unitPriceCurrency",
        "lineItems.0.quantity",
        "lineItems.1.type",
        "lineItems.1.unitPriceAmount",
        "lineItems.1.unitPriceCurrency",
        "lineItems.1.quantity",
        "lineItems.2.quantity",
    }


async def test_a_total_no_money_holds_is_refused_not_a_server_error(
    client: httpx.AsyncClient,
) -> None:
    """1e300 EUR passes every field's rule; its total in cents has more digits than a
    Decimal holds (it was a 500, which the saga retried for ever)."""
    item = {"type": "debit", "unitPriceAmount": 1e300, "unitPriceCurrency": "EUR", "quantity": 2}

    fields = invalid_fields(await put(client, "c-1", orderId="o", lineItems=[item]))

    assert list(fields) == ["lineItems"]
    assert (await get(client, "c-1")).status_code == 404


@pytest.mark.parametrize("cancellation_id", ["x" * 51, "bad id", "semi;colon"])
async def test_put_id_rules(client: httpx.AsyncClient, cancellation_id: str) -> None:
    fields = invalid_fields(await put(client, cancellation_id, orderId="o"))
    assert list(fields) == ["id"]


async def test_valid_id_characters(client: httpx.AsyncClient) -> None:
    response = await put(client, "wf@run~1.step-2_x", orderId="o", churnTime=LATER)
    assert response.status_code == 201


async def test_all_invalid_fields_are_reported_together(client: httpx.AsyncClient) -> None:
    fields = invalid_fields(await put(client, "x" * 51, reason="?", canceledBy="?"))
    assert set(fields) == {"id", "orderId", "reason", "canceledBy"}


# ------------------------------------------------------------------ create and PUT


async def test_put_creates_with_defaults(client: httpx.AsyncClient) -> None:
    response = await put(client, "wf-1", orderId="order-1", churnTime=LATER)
    assert response.status_code == 201
    href = "http://sandbox/rebilly/organizations/org-sandbox/order-cancellations/wf-1"
    assert response.headers["Location"] == href
    assert response.json() == {
        "id": "wf-1",
        "orderId": "order-1",
        "status": "confirmed",
        "churnTime": "2030-02-01T00:00:00Z",
        "churnTimePolicy": None,
        "canceledBy": "customer",
        "reason": "other",
        "prorated": False,
        "proratedInvoiceId": None,
        "appliedInvoiceId": None,
        "lineItems": [],
        "lineItemSubtotal": {"amount": 0.0, "currency": "EUR"},
        "canceledTime": "2030-01-15T12:00:00Z",
        "createdTime": "2030-01-15T12:00:00Z",
        "updatedTime": "2030-01-15T12:00:00Z",
        "_links": [{"href": href, "rel": "self"}],
    }
    assert (await get(client, "wf-1")).json() == response.json()


async def test_read_only_fields_in_the_body_are_ignored(client: httpx.AsyncClient) -> None:
    response = await put(
        client,
        "wf-1",
        orderId="o",
        churnTime=LATER,
        prorated=True,
        proratedInvoiceId="in-1",
        appliedInvoiceId="in-2",
        lineItemSubtotal={"amount": 99, "currency": "USD"},
        createdTime="2020-01-01T00:00:00Z",
    )
    body = response.json()
    assert (body["proratedInvoiceId"], body["appliedInvoiceId"]) == (None, None)
    assert body["lineItemSubtotal"]["currency"] == "EUR"
    assert body["createdTime"] == "2030-01-15T12:00:00Z"


async def test_line_items_carry_their_timestamps(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    item = {"type": "debit", "unitPriceAmount": 5, "unitPriceCurrency": "EUR", "quantity": 1}
    await put(client, "d-1", orderId="o", status="draft", lineItems=[item])
    clock.advance(minutes=1)
    described = {**item, "description": "fee"}
    body = (await put(client, "d-1", orderId="o", status="draft", lineItems=[described])).json()
    assert body["lineItems"] == [
        {
            **described,
            "unitPriceAmount": 5.0,
            "createdTime": "2030-01-15T12:01:00Z",
            "updatedTime": "2030-01-15T12:01:00Z",
        }
    ]


async def test_put_is_idempotent_for_a_confirmed_cancellation(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    first = await put(client, "wf-1", orderId="order-1", churnTime=LATER, reason="too-expensive")
    clock.advance(seconds=30)
    again = await put(client, "wf-1", orderId="order-1", churnTime=LATER, reason="did-not-use")
    assert again.status_code == 200
    assert "Location" not in again.headers
    assert again.json() == first.json()
    moved = await put(client, "wf-1", orderId="order-2", churnTime=LATER)
    assert problem(moved, 422)["detail"] == "Cancellation wf-1 is confirmed and can not be changed"


async def test_churn_time_policy_takes_precedence(client: httpx.AsyncClient) -> None:
    await client.post("/_sandbox/rebilly/orders", json={"id": "o-1", "nextRenewalTime": LATER})
    renewal = await put(
        client, "a", orderId="o-1", churnTimePolicy="at-next-renewal", churnTime="2031-01-01T00:00Z"
    )
    assert renewal.json()["churnTime"] == "2030-02-01T00:00:00Z"
    now = await put(client, "b", orderId="o-2", churnTimePolicy="now", churnTime=LATER)
    assert now.json()["churnTime"] == "2030-01-15T12:00:00Z"
    default = await put(client, "c", orderId="o-3")
    assert default.json()["churnTime"] == "2030-01-15T12:00:00Z"


async def test_implicit_orders_renew_after_the_default_period(client: httpx.AsyncClient) -> None:
    response = await put(client, "a", orderId="fresh", churnTimePolicy="at-next-renewal")
    assert response.json()["churnTime"] == "2030-02-14T12:00:00Z"


async def test_post_generates_an_id(client: httpx.AsyncClient) -> None:
    response = await client.post(
        CANCELLATIONS, json={"orderId": "o", "churnTime": LATER}, headers=REBILLY_HEADERS
    )
    assert response.status_code == 201
    created = response.json()
    assert response.headers["Location"].endswith(f"/order-cancellations/{created['id']}")
    assert (await get(client, created["id"])).json() == created
    assert invalid_fields(await client.post(CANCELLATIONS, json={}, headers=REBILLY_HEADERS)) == {
        "orderId": "orderId is required."
    }


# ------------------------------------------------------------------ drafts


async def test_draft_can_be_updated_confirmed_and_deleted(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    draft = (await put(client, "d-1", orderId="o", status="draft", churnTime=LATER)).json()
    assert (draft["status"], draft["canceledTime"]) == ("draft", None)
    clock.advance(minutes=1)
    updated = await put(client, "d-1", orderId="o", status="draft", reason="did-not-use")
    assert updated.status_code == 200
    assert updated.json()["reason"] == "did-not-use"
    deleted = await client.delete(f"{CANCELLATIONS}/d-1", headers=REBILLY_HEADERS)
    assert deleted.status_code == 204
    assert problem(await get(client, "d-1"), 404)["detail"] == "Cancellation d-1 not found"

    await put(client, "d-2", orderId="o", status="draft", churnTime=LATER)
    confirmed = await put(client, "d-2", orderId="o", churnTime=LATER)
    assert confirmed.status_code == 200
    assert confirmed.json()["status"] == "confirmed"
    assert confirmed.json()["canceledTime"] == "2030-01-15T12:01:00Z"
    refused = await client.delete(f"{CANCELLATIONS}/d-2", headers=REBILLY_HEADERS)
    assert problem(refused, 409)["detail"] == "Cancellation d-2 is confirmed and can not be deleted"


async def test_delete_unknown(client: httpx.AsyncClient) -> None:
    response = await client.delete(f"{CANCELLATIONS}/nope", headers=REBILLY_HEADERS)
    problem(response, 404)


# ------------------------------------------------------------------ conflicts and lifecycle


async def test_one_active_cancellation_per_order(client: httpx.AsyncClient) -> None:
    await put(client, "first", orderId="o", status="draft")
    second = await put(client, "second", orderId="o", churnTime=LATER)
    assert problem(second, 422)["detail"] == "Order o already has an active cancellation first"
    assert (await get(client, "second")).status_code == 404


async def test_confirmed_completes_at_churn_time(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await put(client, "c-1", orderId="o", churnTime="2030-01-15T13:00:00Z")
    clock.advance(minutes=59, seconds=59)
    assert (await get(client, "c-1")).json()["status"] == "confirmed"
    clock.advance(seconds=1)
    completed = (await get(client, "c-1")).json()
    assert completed["status"] == "completed"
    assert completed["updatedTime"] == "2030-01-15T13:00:00Z"
    again = await put(client, "c-1", orderId="o", churnTime="2030-01-15T13:00:00Z")
    assert problem(again, 422)["detail"] == "Cancellation c-1 is completed and can not be changed"
    other = await put(client, "c-2", orderId="o")
    assert problem(other, 422)["detail"] == "Order o is already churned"
    patched = await client.patch(
        f"{CANCELLATIONS}/c-1", json={"reason": "too-expensive"}, headers=REBILLY_HEADERS
    )
    assert problem(patched, 422)["detail"] == "Cancellation c-1 is completed and can not be changed"


async def test_churn_now_completes_immediately(client: httpx.AsyncClient) -> None:
    response = await put(client, "now", orderId="o", churnTimePolicy="now")
    assert response.status_code == 201
    assert response.json()["status"] == "completed"


# ------------------------------------------------------------------ reactivation


async def test_reactivation_revokes_the_confirmed_cancellation(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await put(client, "c-1", orderId="o", churnTime=LATER)
    clock.advance(minutes=5)
    response = await client.post(
        REACTIVATIONS, json={"orderId": "o", "description": "stays"}, headers=REBILLY_HEADERS
    )
    assert response.status_code == 201
    body = response.json()
    location = response.headers["Location"]
    # effectiveTime is write-only; renewalTime is the order's (unchanged) next renewal.
    assert body == {
        "id": body["id"],
        "orderId": "o",
        "cancellationId": "c-1",
        "description": "stays",
        "renewalTime": "2030-02-14T12:00:00Z",
        "createdTime": "2030-01-15T12:05:00Z",
        "updatedTime": "2030-01-15T12:05:00Z",
        "_links": [{"href": location, "rel": "self"}],
    }
    assert location.endswith(f"/order-reactivations/{body['id']}")
    assert (await client.get(location, headers=REBILLY_HEADERS)).json() == body
    revoked = (await get(client, "c-1")).json()
    assert (revoked["status"], revoked["updatedTime"]) == ("revoked", "2030-01-15T12:05:00Z")
    clock.advance(days=30)
    assert (await get(client, "c-1")).json()["status"] == "revoked"

    again = await client.post(REACTIVATIONS, json={"orderId": "o"}, headers=REBILLY_HEADERS)
    assert problem(again, 409)["detail"] == "Order o is active and has no cancellation to undo"
    changed = await put(client, "c-1", orderId="o")
    assert problem(changed, 422)["detail"] == "Cancellation c-1 is revoked and can not be changed"
    # A reactivated order can be cancelled again under a new id.
    assert (await put(client, "c-2", orderId="o", churnTime=LATER)).status_code == 201


async def test_reactivation_restarts_a_churned_order(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    """Documented: "Reactivates an order"; a new service period starts at effectiveTime."""
    await put(client, "c-1", orderId="o", churnTimePolicy="now")
    clock.advance(days=3)
    response = await client.post(
        REACTIVATIONS,
        json={"orderId": "o", "effectiveTime": "2030-01-20T00:00:00Z"},
        headers=REBILLY_HEADERS,
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["cancellationId"], body["renewalTime"]) == ("c-1", "2030-02-19T00:00:00Z")
    assert "effectiveTime" not in body
    # The completed cancellation stays completed (immutable); the order is active again.
    assert (await get(client, "c-1")).json()["status"] == "completed"
    order = (await client.get("/_sandbox/rebilly/orders/o")).json()
    assert (order["churned"], order["nextRenewalTime"]) == (False, "2030-02-19T00:00:00Z")
    assert (await put(client, "c-2", orderId="o", churnTime=LATER)).status_code == 201


async def test_reactivation_with_an_explicit_renewal_time(client: httpx.AsyncClient) -> None:
    await put(client, "c-1", orderId="o", churnTimePolicy="now")
    response = await client.post(
        REACTIVATIONS,
        json={"orderId": "o", "renewalTime": "2030-03-01T00:00:00Z"},
        headers=REBILLY_HEADERS,
    )
    assert response.json()["renewalTime"] == "2030-03-01T00:00:00Z"


async def test_reactivation_of_an_active_order_conflicts(client: httpx.AsyncClient) -> None:
    await put(client, "d-1", orderId="o", status="draft")
    response = await client.post(REACTIVATIONS, json={"orderId": "o"}, headers=REBILLY_HEADERS)
    assert problem(response, 409)["detail"] == "Order o is active and has no cancellation to undo"
    assert (await get(client, "d-1")).json()["status"] == "draft"


async def test_reactivation_validation(client: httpx.AsyncClient) -> None:
    response = await client.post(
        REACTIVATIONS,
        json={"effectiveTime": "soon", "renewalTime": 7, "paymentInstrumentId": 7},
        headers=REBILLY_HEADERS,
    )
    assert set(invalid_fields(response)) == {
        "orderId",
        "effectiveTime",
        "renewalTime",
        "paymentInstrumentId",
    }


# ------------------------------------------------------------------ proration


async def test_proration_credit_and_line_items(client: httpx.AsyncClient) -> None:
    seeded = await client.post(
        "/_sandbox/rebilly/orders",
        json={
            "id": "o",
            "nextRenewalTime": "2030-02-14T12:00:00Z",
            "amount": 30,
            "currency": "usd",
        },
    )
    assert seeded.json()["currency"] == "USD"
    line_items = [
        {"type": "debit", "unitPriceAmount": 5, "unitPriceCurrency": "USD", "quantity": 2},
        {"type": "credit", "unitPriceAmount": 1.5, "unitPriceCurrency": "USD", "quantity": 1},
    ]
    # 20 of the 30 days remain after churn: credit 20.00; then +10.00 debit, -1.50 credit.
    response = await put(
        client,
        "p-1",
        orderId="o",
        churnTime="2030-01-25T12:00:00Z",
        prorated=True,
        lineItems=line_items,
    )
    body = response.json()
    assert body["lineItemSubtotal"] == {"amount": -11.5, "currency": "USD"}
    assert [item["type"] for item in body["lineItems"]] == ["debit", "credit"]


async def test_proration_rounds_to_cents(client: httpx.AsyncClient) -> None:
    await client.post(
        "/_sandbox/rebilly/orders",
        json={"id": "o", "nextRenewalTime": "2030-02-14T12:00:00Z", "amount": 10},
    )
    response = await put(client, "p", orderId="o", churnTime="2030-01-16T12:00:00Z", prorated=True)
    # 29/30 of 10.00 = 9.6666… → 9.67
    assert response.json()["lineItemSubtotal"]["amount"] == -9.67


async def test_unprorated_cancellation_has_no_credit(client: httpx.AsyncClient) -> None:
    response = await put(client, "p", orderId="o", churnTime=LATER)
    assert response.json()["lineItemSubtotal"]["amount"] == 0.0


# ------------------------------------------------------------------ list, patch


async def test_list_filter_and_pagination(client: httpx.AsyncClient, clock: ManualClock) -> None:
    for index in range(4):
        status = "draft" if index == 3 else "confirmed"
        await put(client, f"c-{index}", orderId=f"o-{index}", status=status, churnTime=LATER)
        clock.advance(seconds=1)
    response = await client.get(
        CANCELLATIONS, params={"limit": 2, "offset": 1}, headers=REBILLY_HEADERS
    )
    assert response.status_code == 200
    assert [c["id"] for c in response.json()] == ["c-2", "c-1"]
    assert response.headers["Pagination-Total"] == "4"
    assert response.headers["Pagination-Limit"] == "2"
    assert response.headers["Pagination-Offset"] == "1"

    async def ids(**params: str) -> list[str]:
        listed = await client.get(CANCELLATIONS, params=params, headers=REBILLY_HEADERS)
        return [c["id"] for c in listed.json()]

    assert await ids(filter="orderId:o-1") == ["c-1"]
    assert await ids(filter="status:draft") == ["c-3"]
    assert await ids(filter="status:confirmed;orderId:o-0,o-3") == ["c-0"]
    assert await ids(sort="createdTime") == ["c-0", "c-1", "c-2", "c-3"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"filter": "color:red"}, "filter"),
        ({"limit": "lots"}, "limit"),
        ({"limit": "5000"}, "limit"),
        ({"offset": "-3"}, "offset"),
        ({"sort": "reason"}, "sort"),
    ],
)
async def test_list_parameter_validation(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await client.get(CANCELLATIONS, params=params, headers=REBILLY_HEADERS)
    assert list(invalid_fields(response)) == [field]


async def test_patch_only_reason_and_description(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await put(client, "c-1", orderId="o", churnTime=LATER)
    clock.advance(seconds=10)
    url = f"{CANCELLATIONS}/c-1"
    patched = await client.patch(
        url, json={"reason": "too-expensive", "description": "price"}, headers=REBILLY_HEADERS
    )
    assert patched.status_code == 200
    body = patched.json()
    assert (body["reason"], body["description"]) == ("too-expensive", "price")
    assert body["updatedTime"] == "2030-01-15T12:00:10Z"
    refused = await client.patch(
        url, json={"status": "draft", "churnTime": LATER}, headers=REBILLY_HEADERS
    )
    assert set(invalid_fields(refused)) == {"status", "churnTime"}
    bad_reason = await client.patch(url, json={"reason": "x"}, headers=REBILLY_HEADERS)
    assert list(invalid_fields(bad_reason)) == ["reason"]
    unknown = await client.patch(f"{CANCELLATIONS}/nope", json={}, headers=REBILLY_HEADERS)
    problem(unknown, 404)


# ------------------------------------------------------------------ faults


async def test_rate_limit_fault_sends_epoch_retry_header(client: httpx.AsyncClient) -> None:
    await client.post(
        "/_sandbox/faults",
        json={"provider": "rebilly", "mode": "rate_limit", "retryAfterSeconds": 1.5},
    )
    response = await put(client, "c-1", orderId="o", churnTime=LATER)
    body = problem(response, 429)
    assert body["type"].endswith("/too-many-requests")
    assert response.headers["X-RateLimit-Retry-After"] == str(math.ceil(START.timestamp() + 1.5))
    await client.delete("/_sandbox/faults")
    assert (await get(client, "c-1")).status_code == 404


async def test_drop_response_on_put_then_retry_is_idempotent(client: httpx.AsyncClient) -> None:
    await client.post(
        "/_sandbox/faults",
        json={"provider": "rebilly", "method": "PUT", "mode": "drop_response", "count": 1},
    )
    lost = await put(client, "c-1", orderId="o", churnTime=LATER)
    assert lost.status_code == 504
    retried = await put(client, "c-1", orderId="o", churnTime=LATER)
    assert retried.status_code == 200
    log = (await client.get("/_sandbox/calls", params={"provider": "rebilly"})).json()["calls"]
    assert [(c["path"], c["status"], c["applied"]) for c in log] == [
        ("/order-cancellations/c-1", 504, True),
        ("/order-cancellations/c-1", 200, True),
    ]


async def test_error_fault_in_problem_shape(client: httpx.AsyncClient) -> None:
    await client.post("/_sandbox/faults", json={"provider": "rebilly", "mode": "error"})
    body = problem(await get(client, "x"), 503)
    assert body["title"] == "Service Unavailable"
    assert body["type"].endswith("/service-unavailable")


# ------------------------------------------------------------------ PUT as an upsert that revokes


def record_events(state: Sandbox) -> list[tuple[str, str | None]]:
    """``(event, cancellation id)`` of every subscription event from now on."""
    events: list[tuple[str, str | None]] = []
    state.rebilly.on_event = lambda event, _order, c: events.append(
        (event, c.id if c is not None else None)
    )
    return events


async def test_put_revoked_revokes_a_confirmed_cancellation_once(
    client: httpx.AsyncClient, clock: ManualClock, state: Sandbox
) -> None:
    assert (await put(client, "c-1", orderId="o", churnTime=LATER)).status_code == 201
    events = record_events(state)
    clock.advance(minutes=5)

    revoked = await put(client, "c-1", orderId="o", status="revoked")
    again = await put(client, "c-1", orderId="o", status="revoked")

    assert revoked.status_code == 200 and "Location" not in revoked.headers
    assert (revoked.json()["status"], revoked.json()["updatedTime"]) == (
        "revoked",
        "2030-01-15T12:05:00Z",
    )
    assert again.status_code == 200 and again.json() == revoked.json()
    # The order is active again: one event, and it churns at no time.
    assert events == [("subscription-reactivated", "c-1")]
    clock.advance(days=30)
    assert (await get(client, "c-1")).json()["status"] == "revoked"
    # ...and can be cancelled anew.
    assert (
        await put(client, "c-2", orderId="o", churnTime="2030-03-01T00:00:00Z")
    ).status_code == 201


async def test_put_revoked_on_a_draft_sends_no_event(
    client: httpx.AsyncClient, state: Sandbox
) -> None:
    await put(client, "c-1", orderId="o", status="draft")
    events = record_events(state)
    revoked = await put(client, "c-1", orderId="o", status="revoked")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert events == []


async def test_put_revoked_refuses_what_can_not_be_revoked(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await put(client, "done", orderId="o1", churnTimePolicy="now")
    await put(client, "held", orderId="o2", churnTime=LATER)

    completed = await put(client, "done", orderId="o1", status="revoked")
    other_order = await put(client, "held", orderId="o3", status="revoked")

    assert (
        problem(completed, 422)["detail"] == "Cancellation done is completed and can not be changed"
    )
    assert problem(other_order, 422)["detail"] == (
        "Cancellation held is confirmed and can not be changed"
    )
    assert (await get(client, "held")).json()["status"] == "confirmed"


async def test_a_body_that_is_not_an_object_is_a_documented_422(client: httpx.AsyncClient) -> None:
    response = await client.put(f"{CANCELLATIONS}/c-1", json=["orderId"], headers=REBILLY_HEADERS)
    assert problem(response, 422)["detail"] == "The request body must be a JSON object."


# ------------------------------------------------------------------ rate limit on writes


def quota(response: httpx.Response) -> tuple[int, int]:
    return int(response.headers["X-RateLimit-Limit"]), int(
        response.headers["X-RateLimit-Remaining"]
    )


async def test_successful_writes_carry_the_rate_limit_headers_reads_do_not(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/_sandbox/config", json={"rebilly_write_rate_limit": 10})
    written = [
        await put(client, "c-1", orderId="o", status="draft"),
        await client.patch(
            f"{CANCELLATIONS}/c-1", json={"reason": "other"}, headers=REBILLY_HEADERS
        ),
        await client.delete(f"{CANCELLATIONS}/c-1", headers=REBILLY_HEADERS),
        await put(client, "c-2", orderId="o", churnTime=LATER),
        await client.post(REACTIVATIONS, json={"orderId": "o"}, headers=REBILLY_HEADERS),
        await client.post(CANCELLATIONS, json={"orderId": "p"}, headers=REBILLY_HEADERS),
    ]
    read = await get(client, "c-2")

    assert [r.status_code for r in written] == [201, 200, 204, 201, 201, 201]
    assert [quota(r) for r in written] == [(10, 9), (10, 8), (10, 7), (10, 6), (10, 5), (10, 4)]
    assert read.status_code == 200 and "X-RateLimit-Remaining" not in read.headers
    # A refused write counts too, but its problem carries no quota headers.
    refused = await put(client, "c-3", reason="bored")
    assert problem(refused, 422) and "X-RateLimit-Remaining" not in refused.headers
    assert quota(await put(client, "c-3", orderId="q", status="draft")) == (10, 2)


async def test_a_write_over_the_limit_is_refused_until_the_window_slides(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await client.post(
        "/_sandbox/config",
        json={"rebilly_write_rate_limit": 2, "rebilly_write_rate_limit_window_seconds": 60},
    )
    await put(client, "c-1", orderId="o1", status="draft")
    clock.advance(seconds=10)
    assert quota(await put(client, "c-2", orderId="o2", status="draft")) == (2, 0)

    limited = await put(client, "c-3", orderId="o3", status="draft")

    body = problem(limited, 429)
    assert body["type"].endswith("/too-many-requests")
    # The oldest admitted write leaves the window at START + 60 s.
    assert limited.headers["X-RateLimit-Retry-After"] == str(int(START.timestamp()) + 60)
    assert (await get(client, "c-3")).status_code == 404
    clock.advance(seconds=50)
    assert quota(await put(client, "c-3", orderId="o3", status="draft")) == (2, 0)
