"""Pure Rebilly rules and the Rebilly activities in isolation (no server, no clock).

Activities run in ``ActivityEnvironment`` against an ``httpx.MockTransport``.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.rebilly import RebillyActivities, problem_details_message
from domain.common import InvalidRequest
from domain.rebilly import (
    REBILLY_ID_PATTERN,
    CancellationRef,
    OrderCancellationRequest,
    PutCancellation,
    ReactivateOrder,
    ReactivationOutcome,
    RebillyStatus,
    check_order_cancellation_request,
    derived_cancellation_id,
    order_cancellation_workflow_id,
    parse_order_cancellation_request,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def problems_of(data: dict[str, Any], now: datetime = NOW) -> dict[str, str]:
    with pytest.raises(InvalidRequest) as invalid:
        parse_order_cancellation_request(data, now)
    return {p.field: p.rule for p in invalid.value.problems}


# -- the request -----------------------------------------------------------------


def test_defaults_are_rebillys_documented_ones() -> None:
    request = parse_order_cancellation_request({"orderId": "ord-1"}, NOW)
    body = request.body(RebillyStatus.CONFIRMED).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    assert body == {
        "orderId": "ord-1",
        "status": "confirmed",
        "reason": "other",
        "canceledBy": "customer",
        "prorated": False,
        "lineItems": [],
    }
    assert not request.draft and request.churn_time is None and request.churn_time_policy is None


def test_every_settable_field_reaches_the_body() -> None:
    request = parse_order_cancellation_request(
        {
            "orderId": "ord-1",
            "churnTimePolicy": "at-next-renewal",
            "reason": "too-expensive",
            "canceledBy": "merchant",
            "prorated": True,
            "description": "moving abroad",
            "lineItems": [
                {
                    "type": "debit",
                    "unitPriceAmount": 5.5,
                    "unitPriceCurrency": "eur",
                    "quantity": 2,
                    "description": "early exit fee",
                    "periodStartTime": "2026-12-01T00:00:00Z",
                    "periodEndTime": "2026-12-31T00:00:00Z",
                }
            ],
            "draft": True,
            "customerId": "C-1",
        },
        NOW,
    )
    body = request.body(RebillyStatus.DRAFT).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    assert body == {
        "orderId": "ord-1",
        "status": "draft",
        "churnTimePolicy": "at-next-renewal",
        "reason": "too-expensive",
        "canceledBy": "merchant",
        "prorated": True,
        "description": "moving abroad",
        "lineItems": [
            {
                "type": "debit",
                "unitPriceAmount": 5.5,
                "unitPriceCurrency": "EUR",
                "quantity": 2,
                "description": "early exit fee",
                "periodStartTime": "2026-12-01T00:00:00Z",
                "periodEndTime": "2026-12-31T00:00:00Z",
            }
        ],
    }
    assert "customerId" not in body and "draft" not in body


def test_prorated_invoice_id_is_never_sent() -> None:
    # Read-only in Rebilly's OpenAPI definition: Rebilly chooses the invoice itself.
    request = parse_order_cancellation_request(
        {"orderId": "ord-1", "prorated": True, "proratedInvoiceId": "inv-7"}, NOW
    )
    body = request.body(RebillyStatus.CONFIRMED).model_dump(mode="json", by_alias=True)
    assert "proratedInvoiceId" not in body
    assert "proratedInvoiceId" not in request.model_dump(by_alias=True)


def test_inputs_recorded_with_prorated_invoice_id_still_validate() -> None:
    """Histories of runs started before the field was dropped carry it (as null)."""
    recorded_request = (
        '{"orderId":"ORD-1","churnTime":null,"churnTimePolicy":null,"reason":"other",'
        '"canceledBy":"customer","prorated":false,"proratedInvoiceId":null,'
        '"description":null,"lineItems":[],"draft":false,"customerId":"C-1"}'
    )
    recorded_put = (
        '{"cancellationId":"oc-x-1","body":{"orderId":"ORD-1","status":"confirmed",'
        '"churnTime":null,"churnTimePolicy":null,"reason":"other","canceledBy":"customer",'
        '"prorated":false,"proratedInvoiceId":null,"description":null,"lineItems":[]}}'
    )
    request = OrderCancellationRequest.model_validate_json(recorded_request)
    put = PutCancellation.model_validate_json(recorded_put)
    assert put.body == request.body(RebillyStatus.CONFIRMED)


@pytest.mark.parametrize(
    ("data", "field", "rule"),
    [
        ({}, "orderId", "Field required"),
        ({"orderId": ""}, "orderId", "at least 1 character"),
        ({"orderId": "a/b"}, "orderId", "only letters, digits"),
        ({"orderId": "o" * 51}, "orderId", "at most 50 characters"),
        ({"orderId": "o", "churnTimePolicy": "later"}, "churnTimePolicy", "'at-next-renewal'"),
        ({"orderId": "o", "reason": "bored"}, "reason", "'too-expensive'"),
        ({"orderId": "o", "canceledBy": "robot"}, "canceledBy", "'merchant'"),
        ({"orderId": "o", "description": "d" * 256}, "description", "at most 255"),
        ({"orderId": "o", "churnTime": "2030-01-01T00:00:00"}, "churnTime", "UTC offset"),
        ({"orderId": "o", "churnTime": "soon"}, "churnTime", "valid datetime"),
        ({"orderId": "o", "status": "completed"}, "status", "Extra inputs"),
        (
            {"orderId": "o", "churnTime": "2030-01-01T00:00:00Z", "churnTimePolicy": "now"},
            "churnTimePolicy",
            "not both",
        ),
        ({"orderId": "o", "churnTime": "2026-11-21T11:59:00Z"}, "churnTime", "in the past"),
        (
            {"orderId": "o", "churnTime": "9999-12-31T00:00:00Z"},
            "churnTime",
            "must be at most 730 days ahead",
        ),
    ],
)
def test_invalid_requests_name_the_field(data: dict[str, Any], field: str, rule: str) -> None:
    problems = problems_of(data)
    assert field in problems, problems
    assert rule in problems[field]


@pytest.mark.parametrize(
    ("item", "fields"),
    [
        ({}, {"type", "unitPriceAmount", "unitPriceCurrency", "quantity"}),
        (
            {"type": "gift", "unitPriceAmount": 1, "unitPriceCurrency": "EURO", "quantity": 0},
            {"type", "unitPriceCurrency", "quantity"},
        ),
    ],
)
def test_line_items_need_their_required_fields(item: dict[str, Any], fields: set[str]) -> None:
    problems = problems_of({"orderId": "o", "lineItems": [item]})
    assert {f"lineItems.0.{name}" for name in fields} <= set(problems)


def test_a_line_item_description_is_at_most_rebillys_1000_characters() -> None:
    def item(description: str) -> dict[str, Any]:
        return {
            "type": "debit",
            "unitPriceAmount": 1,
            "unitPriceCurrency": "EUR",
            "quantity": 1,
            "description": description,
        }

    accepted = parse_order_cancellation_request(
        {"orderId": "o", "lineItems": [item("d" * 1000)]}, NOW
    )
    assert accepted.line_items[0].description == "d" * 1000
    problems = problems_of({"orderId": "o", "lineItems": [item("ok"), item("d" * 1001)]})
    assert problems == {"lineItems.1.description": "String should have at most 1000 characters"}


def test_a_line_item_period_must_not_end_before_it_starts() -> None:
    problems = problems_of(
        {
            "orderId": "o",
            "lineItems": [
                {
                    "type": "credit",
                    "unitPriceAmount": 1,
                    "unitPriceCurrency": "EUR",
                    "quantity": 1,
                    "periodStartTime": "2026-12-31T00:00:00Z",
                    "periodEndTime": "2026-12-01T00:00:00Z",
                }
            ],
        }
    )
    assert "periodEndTime must not be before" in problems["lineItems.0"]


def test_every_problem_is_reported_at_once() -> None:
    problems = problems_of({"orderId": "o", "reason": "bored", "churnTime": "2020-01-01T00:00:00Z"})
    assert set(problems) == {"reason", "churnTime"}
    assert problems["churnTime"] == "must not be in the past"


@pytest.mark.parametrize("as_text", [True, False], ids=["string", "datetime"])
def test_churn_time_may_lie_at_most_two_years_ahead(as_text: bool) -> None:
    """Issue #10: a churn time in year 9999 was accepted; cancelctl hands the domain
    a string, the API a datetime: both get the same rule."""
    limit = NOW + timedelta(days=730)

    def data(moment: datetime) -> dict[str, Any]:
        return {"orderId": "o", "churnTime": moment.isoformat() if as_text else moment}

    assert parse_order_cancellation_request(data(limit), NOW).churn_time == limit
    problems = problems_of({**data(limit + timedelta(seconds=1)), "reason": "bored"})
    assert problems == {
        "churnTime": "must be at most 730 days ahead",
        "reason": problems["reason"],
    }


def test_without_the_clock_a_past_churn_time_is_read_as_it_was_accepted() -> None:
    """``now=None``: a request accepted earlier is read again (a redelivery), not judged."""
    past = {"orderId": "o", "churnTime": "2020-01-01T00:00:00Z"}
    assert parse_order_cancellation_request(past, None).churn_time == datetime(
        2020, 1, 1, tzinfo=UTC
    )
    # Every other rule still applies.
    with pytest.raises(InvalidRequest) as invalid:
        parse_order_cancellation_request({**past, "reason": "bored"}, None)
    assert [p.field for p in invalid.value.problems] == ["reason"]


def test_model_validation_is_time_free() -> None:
    # A workflow re-validates its input on every replay, long after the churn time.
    past = OrderCancellationRequest.model_validate(
        {"orderId": "o", "churnTime": "2020-01-01T00:00:00Z"}
    )
    with pytest.raises(InvalidRequest):
        check_order_cancellation_request(past, NOW)
    check_order_cancellation_request(past, datetime(2019, 1, 1, tzinfo=UTC))


def test_future_churn_time_is_accepted() -> None:
    later = NOW + timedelta(minutes=1)
    request = parse_order_cancellation_request({"orderId": "o", "churnTime": later}, NOW)
    assert request.churn_time == later


# -- ids -------------------------------------------------------------------------------


def test_workflow_id_is_the_order() -> None:
    request = OrderCancellationRequest(order_id="ord_01H.x~@-1")
    assert order_cancellation_workflow_id(request) == "cancel-order-ord_01H.x~@-1"


def test_cancellation_id_is_deterministic_and_rebilly_shaped() -> None:
    first = derived_cancellation_id("cancel-order-" + "o" * 50, "run-1", 1)
    assert first == derived_cancellation_id("cancel-order-" + "o" * 50, "run-1", 1)
    assert len(first) <= 50 and re.fullmatch(REBILLY_ID_PATTERN, first)
    assert derived_cancellation_id("cancel-order-" + "o" * 50, "run-2", 1) != first
    assert derived_cancellation_id("cancel-order-x", "run-1", 1) != first
    second = derived_cancellation_id("cancel-order-" + "o" * 50, "run-1", 2)
    assert second != first and second.endswith("-2")


# -- problem details -------------------------------------------------------------------


def test_problem_details_carry_every_invalid_field() -> None:
    body = {
        "type": "https://www.rebilly.com/catalog/all/section/errors/invalid-data",
        "title": "Invalid data",
        "status": 422,
        "detail": "Invalid data",
        "instance": "/order-cancellations/x",
        "invalidFields": [
            {"field": "description", "message": "description must be 255 characters or fewer."},
            {"field": "reason", "message": "reason must be one of: other."},
        ],
    }
    assert problem_details_message(body) == (
        "Invalid data; description: description must be 255 characters or fewer.; "
        "reason: reason must be one of: other."
    )


def test_problem_details_title_and_detail() -> None:
    assert (
        problem_details_message({"title": "Conflict", "detail": "Order o is already churned"})
        == "Conflict: Order o is already churned"
    )
    assert problem_details_message({"title": "Not Found"}) == "Not Found"
    assert problem_details_message("upstream response lost") == "upstream response lost"
    assert problem_details_message({}) is None


# -- activities against a mock Rebilly ------------------------------------------------

CANCELLATION = {
    "id": "oc-abc-1",
    "orderId": "ord-1",
    "status": "confirmed",
    "churnTime": "2026-12-01T00:00:00Z",
    "churnTimePolicy": None,
    "reason": "other",
    "canceledBy": "customer",
    "prorated": False,
    "lineItems": [],
    "lineItemSubtotal": {"amount": 0.0, "currency": "EUR"},
    "_links": [{"href": "https://rebilly.example/order-cancellations/oc-abc-1", "rel": "self"}],
}
PATH = "/organizations/org/order-cancellations/oc-abc-1"
INVALID = {
    "type": "https://www.rebilly.com/catalog/all/section/errors/invalid-data",
    "title": "Invalid data",
    "status": 422,
    "detail": "Invalid data",
    "invalidFields": [
        {"field": "churnTime", "message": "churnTime must be an ISO 8601 date-time."}
    ],
}


class FakeRebilly:
    """Records requests; answers from a route table (a list of answers is used in turn)."""

    def __init__(self, routes: dict[str, Any]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.routes[f"{request.method} {request.url.path}"]
        if isinstance(answer, list):
            answer = answer.pop(0)
        status, body = answer
        if body is None:
            return httpx.Response(status)
        return httpx.Response(
            status,
            json=body,
            headers={"Content-Type": "application/json"} if status >= 400 else None,
        )

    def activities(self) -> RebillyActivities:
        client = httpx.AsyncClient(
            base_url="https://rebilly.example/organizations/org",
            transport=httpx.MockTransport(self),
        )
        return RebillyActivities(client)

    def calls(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]


def env_at_attempt(attempt: int) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = replace(env.info, attempt=attempt)
    return env


def put_request(status: RebillyStatus = RebillyStatus.CONFIRMED) -> PutCancellation:
    body = OrderCancellationRequest(order_id="ord-1").body(status)
    return PutCancellation(cancellation_id="oc-abc-1", body=body)


async def test_first_put_creates_without_looking_up() -> None:
    rebilly = FakeRebilly({f"PUT {PATH}": (201, CANCELLATION)})
    result = await env_at_attempt(1).run(rebilly.activities().put_cancellation, put_request())
    assert result.created and not result.recovered
    assert result.cancellation.status == RebillyStatus.CONFIRMED
    assert rebilly.calls() == [f"PUT {PATH}"]
    assert json.loads(rebilly.requests[0].content)["orderId"] == "ord-1"


async def test_retried_put_finds_what_the_lost_response_created() -> None:
    completed = {**CANCELLATION, "status": "completed"}
    rebilly = FakeRebilly({f"GET {PATH}": (200, completed)})
    result = await env_at_attempt(2).run(rebilly.activities().put_cancellation, put_request())
    assert result.recovered and result.cancellation.status == RebillyStatus.COMPLETED
    assert rebilly.calls() == [f"GET {PATH}"]


async def test_retried_put_sends_again_when_nothing_was_created() -> None:
    rebilly = FakeRebilly(
        {
            f"GET {PATH}": (404, {"title": "Not Found", "status": 404}),
            f"PUT {PATH}": (201, CANCELLATION),
        }
    )
    result = await env_at_attempt(2).run(rebilly.activities().put_cancellation, put_request())
    assert result.created and not result.recovered
    assert rebilly.calls() == [f"GET {PATH}", f"PUT {PATH}"]


# Rebilly documents 422 (not 409) for PUT; 409 is still settled the same way.
REFUSALS = pytest.mark.parametrize("status", [422, 409])


@REFUSALS
async def test_put_refused_on_our_own_completed_cancellation_is_success(status: int) -> None:
    completed = {**CANCELLATION, "status": "completed"}
    rebilly = FakeRebilly(
        {
            f"PUT {PATH}": (status, {"status": status, "detail": "is completed"}),
            f"GET {PATH}": (200, completed),
        }
    )
    result = await env_at_attempt(1).run(rebilly.activities().put_cancellation, put_request())
    assert result.recovered and result.cancellation.status == RebillyStatus.COMPLETED
    assert rebilly.calls() == [f"PUT {PATH}", f"GET {PATH}"]


@REFUSALS
async def test_put_refused_for_another_cancellation_stands(status: int) -> None:
    refusal = {
        "title": "Invalid data",
        "status": status,
        "detail": "Order ord-1 is already churned",
    }
    rebilly = FakeRebilly(
        {
            f"PUT {PATH}": (status, refusal),
            f"GET {PATH}": (404, {"title": "Not Found", "status": 404}),
        }
    )
    with pytest.raises(ApplicationError) as refused:
        await env_at_attempt(1).run(rebilly.activities().put_cancellation, put_request())
    assert refused.value.type == "ProviderRejected" and refused.value.non_retryable
    assert "Order ord-1 is already churned" in refused.value.message


async def test_a_refused_confirmation_of_our_own_draft_stands() -> None:
    # Our id holds a draft, so a refused confirming PUT did not happen: it is not success.
    refusal = {"title": "Invalid data", "status": 422, "detail": "Order ord-1 is already churned"}
    rebilly = FakeRebilly(
        {
            f"PUT {PATH}": (422, refusal),
            f"GET {PATH}": (200, {**CANCELLATION, "status": "draft"}),
        }
    )
    with pytest.raises(ApplicationError, match="already churned"):
        await env_at_attempt(1).run(rebilly.activities().put_cancellation, put_request())


async def test_invalid_fields_become_a_non_retryable_rejection() -> None:
    rebilly = FakeRebilly(
        {
            f"PUT {PATH}": (422, INVALID),
            f"GET {PATH}": (404, {"title": "Not Found", "status": 404}),
        }
    )
    with pytest.raises(ApplicationError) as refused:
        await env_at_attempt(1).run(rebilly.activities().put_cancellation, put_request())
    assert rebilly.calls() == [f"PUT {PATH}", f"GET {PATH}"]
    error = refused.value
    assert error.type == "ProviderRejected" and error.non_retryable
    assert "churnTime: churnTime must be an ISO 8601 date-time." in error.message
    details = error.details[0]
    assert details["status"] == 422
    assert details["body"]["invalidFields"] == INVALID["invalidFields"]


async def test_rate_limit_waits_until_rebillys_epoch() -> None:
    retry_at = int(datetime.now(UTC).timestamp()) + 30

    def limited(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429,
            json={"title": "Too Many Requests", "status": 429},
            headers={"X-RateLimit-Retry-After": str(retry_at)},
        )

    client = httpx.AsyncClient(
        base_url="https://rebilly.example/organizations/org",
        transport=httpx.MockTransport(limited),
    )
    with pytest.raises(ApplicationError) as limited_error:
        await env_at_attempt(1).run(RebillyActivities(client).put_cancellation, put_request())
    error = limited_error.value
    assert error.type == "ProviderUnavailable" and not error.non_retryable
    assert error.next_retry_delay is not None
    assert timedelta(seconds=28) <= error.next_retry_delay <= timedelta(seconds=31)


async def test_confirmed_cancellation_still_pending_is_benign() -> None:
    rebilly = FakeRebilly({f"GET {PATH}": (200, CANCELLATION)})
    with pytest.raises(ApplicationError) as pending:
        await ActivityEnvironment().run(
            rebilly.activities().await_cancellation_completed,
            CancellationRef(cancellation_id="oc-abc-1"),
        )
    assert pending.value.type == "StillPending" and not pending.value.non_retryable


async def test_completed_cancellation_ends_the_poll() -> None:
    rebilly = FakeRebilly({f"GET {PATH}": (200, {**CANCELLATION, "status": "completed"})})
    checked = await env_at_attempt(4).run(
        rebilly.activities().await_cancellation_completed,
        CancellationRef(cancellation_id="oc-abc-1"),
    )
    assert checked.cancellation.status == RebillyStatus.COMPLETED and checked.checks == 4


REACTIVATE = ReactivateOrder(cancellation_id="oc-abc-1", order_id="ord-1", description="stays")
REACTIVATIONS = "/organizations/org/order-reactivations"


async def test_reactivation_of_a_confirmed_cancellation() -> None:
    rebilly = FakeRebilly(
        {
            f"GET {PATH}": [(200, CANCELLATION), (200, {**CANCELLATION, "status": "revoked"})],
            f"POST {REACTIVATIONS}": (201, {"id": "re-1", "orderId": "ord-1"}),
        }
    )
    result = await ActivityEnvironment().run(rebilly.activities().reactivate_order, REACTIVATE)
    assert result.outcome == ReactivationOutcome.REACTIVATED and result.reactivation_id == "re-1"
    assert result.cancellation.status == RebillyStatus.REVOKED
    assert json.loads(rebilly.requests[1].content) == {"orderId": "ord-1", "description": "stays"}


async def test_reactivation_racing_the_churn_says_the_order_was_restarted() -> None:
    """The cancellation completed between our read and our POST: Rebilly documents
    that a reactivation restarts a churned order, so "revoked" would be untrue."""
    rebilly = FakeRebilly(
        {
            f"GET {PATH}": [(200, CANCELLATION), (200, {**CANCELLATION, "status": "completed"})],
            f"POST {REACTIVATIONS}": (201, {"id": "re-2", "orderId": "ord-1"}),
        }
    )
    result = await ActivityEnvironment().run(rebilly.activities().reactivate_order, REACTIVATE)
    assert result.outcome == ReactivationOutcome.RESTARTED and result.reactivation_id == "re-2"
    assert result.cancellation.status == RebillyStatus.COMPLETED


async def test_reactivation_retry_after_success_sends_nothing() -> None:
    rebilly = FakeRebilly({f"GET {PATH}": (200, {**CANCELLATION, "status": "revoked"})})
    result = await env_at_attempt(2).run(rebilly.activities().reactivate_order, REACTIVATE)
    assert result.outcome == ReactivationOutcome.ALREADY_REVOKED
    assert rebilly.calls() == [f"GET {PATH}"]


async def test_reactivation_conflict_is_settled_by_reading() -> None:
    rebilly = FakeRebilly(
        {
            f"GET {PATH}": [(200, CANCELLATION), (200, {**CANCELLATION, "status": "completed"})],
            f"POST {REACTIVATIONS}": (409, {"title": "Conflict", "status": 409}),
        }
    )
    result = await ActivityEnvironment().run(rebilly.activities().reactivate_order, REACTIVATE)
    assert result.outcome == ReactivationOutcome.ALREADY_COMPLETED


async def test_reactivation_never_touches_a_draft() -> None:
    rebilly = FakeRebilly({f"GET {PATH}": (200, {**CANCELLATION, "status": "draft"})})
    with pytest.raises(ApplicationError, match="delete it instead"):
        await ActivityEnvironment().run(rebilly.activities().reactivate_order, REACTIVATE)
    assert rebilly.calls() == [f"GET {PATH}"]


@pytest.mark.parametrize(("status", "gone"), [(204, False), (404, True)])
async def test_deleting_a_draft_is_idempotent(status: int, gone: bool) -> None:
    body = None if status == 204 else {"title": "Not Found", "status": 404}
    rebilly = FakeRebilly({f"DELETE {PATH}": (status, body)})
    result = await env_at_attempt(2).run(
        rebilly.activities().delete_draft, CancellationRef(cancellation_id="oc-abc-1")
    )
    assert result.already_gone is gone


async def test_find_returns_none_for_an_unknown_id() -> None:
    rebilly = FakeRebilly({f"GET {PATH}": (404, {"title": "Not Found", "status": 404})})
    found = await ActivityEnvironment().run(
        rebilly.activities().find_cancellation, CancellationRef(cancellation_id="oc-abc-1")
    )
    assert found is None


def test_saga_built_reactivation_description_is_fitted_to_255() -> None:
    description = ReactivateOrder(
        cancellation_id="c", order_id="o", description="d" * 400
    ).description

    assert description is not None and len(description) == 255 and description.endswith("…")


@pytest.mark.parametrize(
    ("data", "field", "rule"),
    [
        ({"orderId": "   "}, "orderId", "must not be blank"),
        ({"orderId": "ord-1\x07"}, "orderId", "control characters"),
        ({"orderId": "ord-1", "customerId": " "}, "customerId", "must not be blank"),
    ],
)
def test_blank_or_control_character_order_ids_start_nothing(
    data: dict[str, str], field: str, rule: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_order_cancellation_request(data, datetime.now(UTC))
    assert [(p.field, rule in p.rule) for p in refused.value.problems] == [(field, True)]


def test_order_id_in_full_width_is_the_same_order() -> None:
    full_width = "\uff4f\uff52\uff44-1"  # "ord-1" in full-width letters
    request = parse_order_cancellation_request({"orderId": f" {full_width} "}, datetime.now(UTC))
    assert request.order_id == "ord-1"
