"""sTN: auth, validation, lifecycle, query and cancel rules."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest

from sandbox.app import create_app
from sandbox.clock import ManualClock
from sandbox.settings import SandboxSettings
from tests.sandbox.conftest import START, STN_HEADERS

TERMINATE = "/stn/api/TerminateSubscription"
QUERY = "/stn/api/QueryActivation"
CANCEL = "/stn/api/CancelTerminateSubscription"


async def terminate(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post(TERMINATE, json=body, headers=STN_HEADERS)


async def query(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get(QUERY, params=params, headers=STN_HEADERS)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def activation(client: httpx.AsyncClient, activation_id: str) -> dict[str, Any]:
    results: list[dict[str, Any]] = (await query(client, id=activation_id))["results"]
    assert len(results) == 1
    return results[0]


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    status_body: dict[str, Any] = response.json()["responseStatus"]
    assert status_body["errorCode"] == code
    return status_body


# ------------------------------------------------------------------ auth


@pytest.mark.parametrize("headers", [{}, {"stn-api-key": "wrong"}])
@pytest.mark.parametrize(
    ("method", "path"), [("POST", TERMINATE), ("GET", QUERY), ("POST", CANCEL)]
)
async def test_requests_without_valid_key_are_unauthorized(
    client: httpx.AsyncClient, headers: dict[str, str], method: str, path: str
) -> None:
    response = await client.request(method, path, json={"subscriptionId": "S1"}, headers=headers)
    assert response.status_code == 401
    assert response.json() == {
        "responseStatus": {
            "errorCode": "Unauthorized",
            "message": "Invalid or missing stn-api-key",
            "errors": [],
        }
    }


# ------------------------------------------------------------------ validation


async def test_terminate_requires_subscription_or_phone(client: httpx.AsyncClient) -> None:
    response = await terminate(client, referenceNumber="R1")
    message = "Either 'subscription Id' or 'phone Number' must be provided."
    assert response.json() == {
        "responseStatus": {
            "errorCode": "NotEmpty",
            "message": message,
            "errors": [
                {"errorCode": "NotEmpty", "fieldName": "subscriptionId", "message": message}
            ],
        }
    }
    assert response.status_code == 400


async def test_reference_number_longer_than_15_is_rejected(client: httpx.AsyncClient) -> None:
    body = assert_error(
        await terminate(client, subscriptionId="S1", referenceNumber="x" * 16), 400, "MaximumLength"
    )
    assert body["message"] == (
        "The length of 'reference Number' must be 15 characters or fewer."
        " You entered 16 characters."
    )
    assert body["errors"][0]["fieldName"] == "referenceNumber"
    ok = await terminate(client, subscriptionId="S1", referenceNumber="x" * 15)
    assert ok.status_code == 200


@pytest.mark.parametrize("phone", ["0612345678", "06-1234567", "+31612345678", "07-12345678"])
async def test_phone_number_must_be_dashed(client: httpx.AsyncClient, phone: str) -> None:
    body = assert_error(await terminate(client, phoneNumber=phone), 400, "RegularExpression")
    assert body["errors"] == [
        {
            "errorCode": "RegularExpression",
            "fieldName": "phoneNumber",
            "message": "'phone Number' must be written as 06-12345678.",
        }
    ]


@pytest.mark.parametrize("wish_date", ["2030-03-01T12:00:00", "2030-03-01", "tomorrow", "1"])
async def test_wish_date_needs_iso_8601_with_offset(
    client: httpx.AsyncClient, wish_date: str
) -> None:
    body = assert_error(
        await terminate(client, subscriptionId="S1", wishDate=wish_date), 400, "InvalidFormat"
    )
    assert body["errors"][0]["fieldName"] == "wishDate"


async def test_all_field_errors_are_reported_with_the_first_on_top(
    client: httpx.AsyncClient,
) -> None:
    response = await terminate(client, phoneNumber="12", wishDate="soon", referenceNumber="r" * 20)
    body = assert_error(response, 400, "RegularExpression")
    assert [error["fieldName"] for error in body["errors"]] == [
        "phoneNumber",
        "wishDate",
        "referenceNumber",
    ]
    assert body["message"] == body["errors"][0]["message"]


# ------------------------------------------------------------------ terminate


async def test_terminate_returns_a_busy_activation(client: httpx.AsyncClient) -> None:
    response = await terminate(
        client,
        subscriptionId="SUB-1",
        phoneNumber="06-12345678",
        wishDate="2030-03-01T12:00:00+01:00",
        referenceNumber="REF-1",
    )
    assert response.status_code == 200
    body = response.json()
    assert re.fullmatch(r"[A-Za-z0-9]{16}", body["id"])
    assert body == {
        "id": body["id"],
        "createdAt": "2030-01-15T12:00:00.000Z",
        "modifiedAt": "2030-01-15T12:00:00.000Z",
        "status": "BUSY",
        "activationType": "TERMINATE",
        "providerEnvironment": "SP16001",
        "referenceNumber": "REF-1",
        "subscriptionId": "SUB-1",
        "phoneNumber": "06-12345678",
        "info": {"wishDate": "2030-03-01T12:00:00+01:00"},
    }


async def test_optional_fields_are_only_echoed_when_given(client: httpx.AsyncClient) -> None:
    body = (await terminate(client, subscriptionId="SUB-2")).json()
    assert body["info"] == {}
    assert "phoneNumber" not in body and "referenceNumber" not in body
    assert "activatedDate" not in body


async def test_phone_only_maps_to_a_stable_subscription(client: httpx.AsyncClient) -> None:
    body = (await terminate(client, phoneNumber="06-11112222")).json()
    assert body["subscriptionId"] == "SUB0611112222"
    second = await terminate(client, phoneNumber="06-11112222")
    status = assert_error(second, 400, "TerminationPending")
    assert body["id"] in status["message"]


async def test_phone_and_subscription_are_linked(client: httpx.AsyncClient) -> None:
    first = (await terminate(client, subscriptionId="LINKED", phoneNumber="06-33334444")).json()
    second = await terminate(client, phoneNumber="06-33334444")
    status = assert_error(second, 400, "TerminationPending")
    assert first["id"] in status["message"]
    # The provider knows the number of a subscription it has seen with one.
    assert (await activation(client, first["id"]))["phoneNumber"] == "06-33334444"


# ------------------------------------------------------------------ lifecycle


async def test_termination_settles_to_done_after_the_processing_delay(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    created = (await terminate(client, subscriptionId="S-LIFE")).json()
    clock.advance(seconds=4.9)
    assert (await activation(client, created["id"]))["status"] == "BUSY"
    clock.advance(seconds=0.1)
    done = await activation(client, created["id"])
    assert done["status"] == "DONE"
    assert done["activatedDate"] == "2030-01-15T12:00:05.000Z"
    assert done["modifiedAt"] == "2030-01-15T12:00:05.000Z"
    again = await terminate(client, subscriptionId="S-LIFE")
    assert assert_error(again, 400, "SubscriptionTerminated")["message"] == (
        "Subscription S-LIFE has already been terminated."
    )


async def test_wish_date_postpones_processing(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    wish = START + timedelta(days=2)
    created = (await terminate(client, subscriptionId="S-WISH", wishDate=wish.isoformat())).json()
    clock.advance(days=2, seconds=4)
    assert (await activation(client, created["id"]))["status"] == "BUSY"
    clock.advance(seconds=1)
    assert (await activation(client, created["id"]))["status"] == "DONE"


@pytest.mark.parametrize(
    "wish_date",
    ["9999-12-31T23:59:59.999+00:00", "9999-12-31T23:30:00-05:00", "0001-01-01T00:30:00+01:00"],
    ids=["last-moment", "past-year-9999-in-utc", "before-year-1-in-utc"],
)
async def test_a_wish_date_beyond_what_can_be_scheduled_is_refused_and_harms_nobody(
    client: httpx.AsyncClient, clock: ManualClock, wish_date: str
) -> None:
    """Issue #10: a wish date at the end of year 9999 was accepted; adding the processing
    delay to it then overflowed, and sTN answered 500 to every request after it."""
    body = assert_error(
        await terminate(client, subscriptionId="S-FAR", wishDate=wish_date), 400, "InclusiveBetween"
    )
    assert body["errors"] == [
        {
            "errorCode": "InclusiveBetween",
            "fieldName": "wishDate",
            "message": "'wish Date' is out of range.",
        }
    ]
    assert (await query(client, subscriptionId="S-FAR"))["total"] == 0
    other = await terminate(client, subscriptionId="S-NEXT")
    assert other.status_code == 200, other.text
    clock.advance(seconds=5)
    assert (await activation(client, other.json()["id"]))["status"] == "DONE"


async def test_a_late_wish_date_never_due_keeps_the_store_answering(
    client: httpx.AsyncClient, clock: ManualClock, state: Any
) -> None:
    """A date the store accepted can end up beyond the last representable moment once
    the processing delay grows: it is then never due, and every query still works."""
    created = await terminate(client, subscriptionId="S-LATE", wishDate="9999-12-31T23:59:50Z")
    assert created.status_code == 200, created.text
    state.context.settings.stn_processing_delay_seconds = 3600.0
    clock.advance(days=1)
    assert (await activation(client, created.json()["id"]))["status"] == "BUSY"
    assert (await terminate(client, subscriptionId="S-OTHER")).status_code == 200


@pytest.mark.parametrize("configure_first", [True, False])
async def test_configured_error_outcome(
    client: httpx.AsyncClient, clock: ManualClock, configure_first: bool
) -> None:
    outcome = {"outcome": "ERROR", "message": "SIM is blocked"}
    if configure_first:
        await client.post("/_sandbox/stn/subscriptions/S-ERR", json=outcome)
    created = (await terminate(client, subscriptionId="S-ERR")).json()
    if not configure_first:
        await client.post("/_sandbox/stn/subscriptions/S-ERR", json=outcome)
    clock.advance(seconds=5)
    failed = await activation(client, created["id"])
    assert failed["status"] == "ERROR"
    assert "activatedDate" not in failed
    assert failed["info"]["errorMessage"] == "SIM is blocked"
    # A failed termination does not terminate the subscription: it can be retried.
    await client.post("/_sandbox/stn/subscriptions/S-ERR", json={"outcome": "DONE"})
    assert (await terminate(client, subscriptionId="S-ERR")).status_code == 200


async def test_processing_delay_with_the_real_clock() -> None:
    app = create_app(SandboxSettings(stn_processing_delay_seconds=0.05))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        created = (await terminate(client, subscriptionId="S-REAL")).json()
        deadline = time.monotonic() + 5
        status = created["status"]
        while status != "DONE":
            assert time.monotonic() < deadline, "termination never settled"
            await asyncio.sleep(0.01)  # poll interval, not synchronisation
            status = (await activation(client, created["id"]))["status"]


# ------------------------------------------------------------------ query


async def test_query_filters_sorting_and_paging(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    ids = []
    for index in range(3):
        body = (await terminate(client, phoneNumber=f"06-0000000{index}")).json()
        ids.append(body["id"])
        clock.advance(seconds=1)
    clock.advance(seconds=2.5)  # the first (created at +0 s) is due at +5 s: DONE
    everything = await query(client)
    assert everything["total"] == 3
    assert [item["id"] for item in everything["results"]] == ids
    assert everything["offset"] == 0
    assert everything["meta"] == {}

    newest_first = await query(client, orderBy="-createdAt", take=2, skip=1)
    assert newest_first["total"] == 3
    assert newest_first["offset"] == 1
    assert [item["id"] for item in newest_first["results"]] == [ids[1], ids[0]]

    assert [r["id"] for r in (await query(client, phoneNumber="0600000001"))["results"]] == [ids[1]]
    assert [r["id"] for r in (await query(client, phoneNumber="06-00000002"))["results"]] == [
        ids[2]
    ]
    assert (await query(client, subscriptionId="SUB0600000000"))["results"][0]["id"] == ids[0]
    assert [r["id"] for r in (await query(client, status="DONE"))["results"]] == [ids[0]]
    assert (await query(client, status="BUSY"))["total"] == 2
    assert (await query(client, activationType="TERMINATE"))["total"] == 3
    assert (await query(client, activationType="ACTIVATE"))["total"] == 0
    window = await query(
        client, createdAtFrom="2030-01-15T12:00:01Z", createdAtTo="2030-01-15T12:00:01.000Z"
    )
    assert [r["id"] for r in window["results"]] == [ids[1]]
    assert (await query(client, id="nope"))["total"] == 0
    by_day = await query(client, createdAtFrom="2030-01-15", createdAtTo="2030-01-15")
    assert by_day["total"] == 3


async def test_query_by_reference_number_and_order_by_desc(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    first = (await terminate(client, subscriptionId="S-R1", referenceNumber="REF-A")).json()
    clock.advance(seconds=1)
    second = (await terminate(client, subscriptionId="S-R2", referenceNumber="REF-B")).json()
    clock.advance(seconds=1)
    third = (await terminate(client, subscriptionId="S-R3", referenceNumber="REF-A")).json()
    found = await query(client, referenceNumber="REF-A", activationType="TERMINATE")
    assert [r["id"] for r in found["results"]] == [first["id"], third["id"]]
    newest = await query(client, referenceNumber="REF-A", orderByDesc="createdAt")
    assert [r["id"] for r in newest["results"]] == [third["id"], first["id"]]
    # AutoQuery names are case-insensitive; several fields are comma-separated.
    mixed = await query(client, orderBy="ReferenceNumber", orderByDesc="CreatedAt")
    assert [r["id"] for r in mixed["results"]] == [third["id"], first["id"], second["id"]]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"take": "many"}, "Take"),
        ({"skip": "-1"}, "Skip"),
        ({"orderBy": "colour"}, "OrderBy"),
        ({"orderByDesc": "colour"}, "OrderByDesc"),
        ({"createdAtFrom": "yesterday"}, "CreatedAtFrom"),
        ({"createdAtTo": "9999-12-31T23:30:00-05:00"}, "CreatedAtTo"),  # past year 9999 in UTC
        ({"phoneNumber": "12"}, "PhoneNumber"),
    ],
)
async def test_invalid_query_parameters(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await client.get(QUERY, params=params, headers=STN_HEADERS)
    assert response.status_code == 400
    assert response.json()["responseStatus"]["errors"][0]["fieldName"] == field


# ------------------------------------------------------------------ cancel


async def cancel(client: httpx.AsyncClient, activation_id: str, **body: Any) -> httpx.Response:
    return await client.post(
        CANCEL, json={"activationId": activation_id, **body}, headers=STN_HEADERS
    )


async def test_cancel_answers_a_new_busy_activation_that_becomes_done(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    wish = "2030-01-16T12:00:00+01:00"
    created = (
        await terminate(client, subscriptionId="S-CXL", wishDate=wish, referenceNumber="REF-C")
    ).json()
    clock.advance(seconds=1)
    response = await cancel(client, created["id"], note="customer stays")
    assert response.status_code == 200
    cancellation = response.json()
    assert cancellation["id"] != created["id"]
    assert cancellation == {
        "id": cancellation["id"],
        "createdAt": "2030-01-15T12:00:01.000Z",
        "modifiedAt": "2030-01-15T12:00:01.000Z",
        "status": "BUSY",
        "activationType": "TERMINATE",
        "providerEnvironment": "SP16001",
        "referenceNumber": "REF-C",
        "subscriptionId": "S-CXL",
        "info": {"wishDate": wish},
    }
    termination = await activation(client, created["id"])
    assert termination["status"] == "CANCELLING"
    assert_error(await cancel(client, created["id"]), 400, "CancellationPending")
    assert_error(await terminate(client, subscriptionId="S-CXL"), 400, "TerminationPending")

    clock.advance(seconds=5)  # the cancellation delay (default 0.5 s) has passed
    done = await activation(client, cancellation["id"])
    assert done["status"] == "DONE"
    assert done["activatedDate"] == "2030-01-15T12:00:01.500Z"
    # The termination never executes: it ends ERROR (sandbox assumption) and the
    # subscription can be terminated again.
    clock.advance(days=2)
    termination = await activation(client, created["id"])
    assert termination["status"] == "ERROR" and "activatedDate" not in termination
    assert cancellation["id"] in termination["info"]["errorMessage"]
    assert_error(await cancel(client, created["id"]), 400, "AlreadyExecuted")
    assert (await terminate(client, subscriptionId="S-CXL")).status_code == 200
    both = await query(client, referenceNumber="REF-C", orderByDesc="createdAt")
    assert [r["id"] for r in both["results"]] == [cancellation["id"], created["id"]]


async def test_a_cancellation_configured_to_fail_leaves_the_termination_to_execute(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    spec = {"cancelOutcome": "ERROR", "cancelMessage": "too late for the network"}
    assert (await client.post("/_sandbox/stn/subscriptions/S-KEEP", json=spec)).json() == {
        "subscriptionId": "S-KEEP",
        **spec,
    }
    created = (await terminate(client, subscriptionId="S-KEEP")).json()
    cancellation = (await cancel(client, created["id"])).json()
    clock.advance(seconds=0.5)
    failed = await activation(client, cancellation["id"])
    assert failed["status"] == "ERROR"
    assert failed["info"]["errorMessage"] == "too late for the network"
    # The termination stands: BUSY again, executed at its own time.
    assert (await activation(client, created["id"]))["status"] == "BUSY"
    clock.advance(seconds=4.5)
    done = await activation(client, created["id"])
    assert done["status"] == "DONE"
    assert done["activatedDate"] == "2030-01-15T12:00:05.000Z"


async def test_a_termination_held_while_cancelling_executes_when_released_late(
    client: httpx.AsyncClient, clock: ManualClock, state: Any
) -> None:
    await client.post("/_sandbox/stn/subscriptions/S-HELD", json={"cancelOutcome": "ERROR"})
    created = (await terminate(client, subscriptionId="S-HELD")).json()
    state.context.settings.stn_cancellation_delay_seconds = 30.0
    cancellation = (await cancel(client, created["id"])).json()
    clock.advance(seconds=10)  # the termination's own time (+5 s) passes while CANCELLING
    assert (await activation(client, created["id"]))["status"] == "CANCELLING"
    clock.advance(seconds=20)
    assert (await activation(client, cancellation["id"]))["status"] == "ERROR"
    released = await activation(client, created["id"])
    assert released["status"] == "DONE"
    assert released["activatedDate"] == "2030-01-15T12:00:30.000Z"


async def test_cancel_after_execution_is_rejected(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    created = (await terminate(client, subscriptionId="S-LATE")).json()
    clock.advance(seconds=5)
    response = await client.post(CANCEL, json={"activationId": created["id"]}, headers=STN_HEADERS)
    assert assert_error(response, 400, "AlreadyExecuted")["message"] == (
        f"Activation {created['id']} has already been executed and can not be cancelled."
    )


async def test_cancel_unknown_activation(client: httpx.AsyncClient) -> None:
    response = await client.post(CANCEL, json={"activationId": "nope"}, headers=STN_HEADERS)
    assert_error(response, 404, "NotFound")


async def test_a_cancellation_can_not_itself_be_cancelled(
    client: httpx.AsyncClient,
) -> None:
    created = (await terminate(client, subscriptionId="S-TWICE")).json()
    cancellation = (await cancel(client, created["id"])).json()
    assert_error(await cancel(client, cancellation["id"]), 404, "NotFound")


async def test_cancel_validation(client: httpx.AsyncClient) -> None:
    missing = await client.post(CANCEL, json={"note": "n"}, headers=STN_HEADERS)
    body = assert_error(missing, 400, "SerializationException")
    assert body["message"].endswith(
        "missing required properties, including the following: activationId"
    )
    long_note = await client.post(
        CANCEL, json={"activationId": "x", "note": "n" * 165}, headers=STN_HEADERS
    )
    body = assert_error(long_note, 400, "MaximumLength")
    assert body["errors"][0]["fieldName"] == "note"
    assert body["message"] == (
        "The length of 'note' must be 164 characters or fewer. You entered 165 characters."
    )


async def test_non_object_body_is_a_serialization_error(client: httpx.AsyncClient) -> None:
    response = await client.post(TERMINATE, content=b"[1, 2]", headers=STN_HEADERS)
    assert_error(response, 400, "SerializationException")
