"""Airalo's pure rules and the token cache, without a server (httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.airalo import (
    PAGE_SIZE,
    TOKEN_MAX_AGE,
    AiraloActivities,
    AiraloTokens,
    airalo_message,
    stated_expiry,
    token_lifetime,
)
from config.settings import AiraloSettings
from domain.airalo import (
    CANCELLATION_WINDOW,
    MAX_IDS_PER_CANCEL,
    MAX_LISTINGS,
    CancelFutureOrders,
    CreateFutureOrder,
    FutureOrder,
    FutureOrderCancellationRequest,
    ListFutureOrders,
    ListFutureOrdersPage,
    OrderOutcome,
    OrderOutcomeRecord,
    RejectionKind,
    can_create_for,
    cancellation_batches,
    earliest_due_date,
    format_airalo_date,
    future_order_cancellation_workflow_id,
    page_digest,
    parse_airalo_date,
    parse_cancel_rejections,
    parse_future_order_cancellation_request,
    summarize_outcomes,
)
from domain.common import ErrorType, InvalidRequest

BASE = "http://airalo.test"


def rid(n: int) -> str:
    return f"req{n:022d}"


def order(n: int, cutoff: datetime) -> FutureOrder:
    return FutureOrder(
        request_id=rid(n),
        package_id="pkg",
        quantity=1,
        due_date=cutoff + timedelta(hours=24),
        latest_cancellation_date=cutoff,
    )


# -- the request -------------------------------------------------------------------


def test_request_ids_must_be_25_characters_and_unique() -> None:
    with pytest.raises(InvalidRequest) as short:
        parse_future_order_cancellation_request({"requestIds": [rid(1), "x" * 24, "y" * 26]})
    assert [(p.field, p.rule) for p in short.value.problems] == [
        ("requestIds.1", "must be exactly 25 characters (got 24)"),
        ("requestIds.2", "must be exactly 25 characters (got 26)"),
    ]

    with pytest.raises(InvalidRequest) as repeated:
        parse_future_order_cancellation_request({"requestIds": [rid(1), rid(2), rid(1)]})
    assert repeated.value.problems[0].field == "requestIds"
    assert "unique" in repeated.value.problems[0].rule and rid(1) in repeated.value.problems[0].rule

    with pytest.raises(InvalidRequest) as empty:
        parse_future_order_cancellation_request({"requestIds": []})
    assert empty.value.problems[0].field == "requestIds"


def test_more_than_ten_ids_are_not_an_error() -> None:
    request = parse_future_order_cancellation_request(
        {"requestIds": [rid(n) for n in range(25)], "customerId": "C-1"}
    )
    assert len(request.request_ids) == 25
    assert request.summary() == "Cancel 25 Airalo future orders for customer C-1"
    single = FutureOrderCancellationRequest(request_ids=[rid(7)])
    assert single.summary() == f"Cancel Airalo future order {rid(7)}"


def test_workflow_id_is_the_same_for_the_same_set_of_ids() -> None:
    forward = FutureOrderCancellationRequest(request_ids=[rid(1), rid(2), rid(3)])
    backward = FutureOrderCancellationRequest(request_ids=[rid(3), rid(1), rid(2)])
    other = FutureOrderCancellationRequest(request_ids=[rid(1), rid(2)])

    assert future_order_cancellation_workflow_id(forward) == future_order_cancellation_workflow_id(
        backward
    )
    assert future_order_cancellation_workflow_id(forward) != future_order_cancellation_workflow_id(
        other
    )
    assert future_order_cancellation_workflow_id(forward).startswith("cancel-future-orders-")


def test_outcome_finality() -> None:
    assert not OrderOutcome.PENDING.is_final and not OrderOutcome.CANCELLING.is_final
    assert all(
        o.is_final for o in OrderOutcome if o not in (OrderOutcome.PENDING, OrderOutcome.CANCELLING)
    )


# -- dates -------------------------------------------------------------------------


def test_airalo_dates_are_minutes_in_utc() -> None:
    amsterdam = timezone(timedelta(hours=2))
    assert format_airalo_date(datetime(2030, 3, 1, 12, 30, 59, tzinfo=amsterdam)) == (
        "2030-03-01 10:30"
    )
    assert parse_airalo_date("2030-03-01 10:30") == datetime(2030, 3, 1, 10, 30, tzinfo=UTC)
    assert parse_airalo_date("2030-03-01 10:30:15") == datetime(2030, 3, 1, 10, 30, 15, tzinfo=UTC)
    with pytest.raises(ValueError):
        format_airalo_date(datetime(2030, 3, 1, 10, 30))
    with pytest.raises(ValueError):
        parse_airalo_date("01-03-2030")


def test_future_order_from_the_listing() -> None:
    item = {
        "request_id": rid(1),
        "quantity": 2,
        "description": "trip",
        "status": "pending",
        "package_id": "pkg-1",
        "due_date": "2030-03-02 10:00",
    }
    parsed = FutureOrder.from_airalo(item)
    # No cut-off in the item: the documented 24 h before the due date.
    assert parsed.latest_cancellation_date == datetime(2030, 3, 1, 10, 0, tzinfo=UTC)
    assert parsed.cutoff_passed(datetime(2030, 3, 1, 10, 0, tzinfo=UTC))
    assert not parsed.cutoff_passed(datetime(2030, 3, 1, 9, 59, tzinfo=UTC))
    explicit = FutureOrder.from_airalo({**item, "latest_cancellation_date": "2030-03-01 09:00"})
    assert explicit.latest_cancellation_date == datetime(2030, 3, 1, 9, 0, tzinfo=UTC)
    # Round trip through the workflow's payloads.
    assert FutureOrder.model_validate(parsed.model_dump(mode="json")) == parsed


def test_an_order_due_at_or_before_the_churn_date_is_kept() -> None:
    churn = datetime(2030, 3, 2, 10, 0, tzinfo=UTC)

    def due(moment: datetime) -> FutureOrder:
        return FutureOrder(
            request_id=rid(1),
            package_id="pkg",
            quantity=1,
            due_date=moment,
            latest_cancellation_date=moment - CANCELLATION_WINDOW,
        )

    assert due(churn).due_by(churn)  # at the churn date: the customer is still active
    assert due(churn - timedelta(minutes=1)).due_by(churn)
    assert not due(churn + timedelta(minutes=1)).due_by(churn)
    assert due(churn).due_by(churn.astimezone(timezone(timedelta(hours=2))))  # same instant


def test_summary_counts_kept_orders_last() -> None:
    records = [
        OrderOutcomeRecord(request_id=rid(n), outcome=outcome)
        for n, outcome in enumerate(
            [OrderOutcome.KEPT, OrderOutcome.CANCELLED, OrderOutcome.KEPT], start=1
        )
    ]
    assert summarize_outcomes(records) == "1 CANCELLED, 2 KEPT"


# -- batching ----------------------------------------------------------------------


def test_batches_of_ten_earliest_cutoff_first_unknown_last() -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    ids = [rid(n) for n in range(25)]
    # Later IDs are due earlier; rid(0) and rid(1) are not listed.
    orders = {rid(n): order(n, start + timedelta(hours=100 - n)) for n in range(2, 25)}

    batches = cancellation_batches(ids, orders)

    assert [len(batch) for batch in batches] == [10, 10, 5]
    assert batches[0] == [rid(n) for n in range(24, 14, -1)]
    assert batches[-1][-2:] == [rid(0), rid(1)]
    assert sorted(i for batch in batches for i in batch) == sorted(ids)
    assert all(len(batch) <= MAX_IDS_PER_CANCEL for batch in batches)


def test_equal_cutoffs_keep_request_order() -> None:
    cutoff = datetime(2030, 1, 1, tzinfo=UTC)
    ids = [rid(3), rid(1), rid(2)]
    assert cancellation_batches(ids, {i: order(0, cutoff) for i in ids}) == [ids]


# -- a 422 -------------------------------------------------------------------------


def test_422_indexes_map_back_to_the_ids_sent() -> None:
    sent = [rid(n) for n in range(10)]
    body = {
        "data": {
            "request_ids.2": f"Request ID: {rid(2)} is already processed and can not be cancelled.",
            "request_ids.7": f"Request ID: {rid(7)} does not exist.",
            "request_ids.9": "The request_ids.9 field must be 25 characters.",
            "request_ids.4": f"Request ID: {rid(4)} can not be cancelled less than 24 hours "
            "before its due date.",
            "request_ids.12": "out of range",
            "other": "ignored",
        },
        "meta": {"message": "the parameter is invalid"},
    }

    rejections = parse_cancel_rejections(sent, body)

    assert [(r.request_id, r.kind) for r in rejections] == [
        (rid(2), RejectionKind.ALREADY_PROCESSED),
        (rid(4), RejectionKind.PAST_CUTOFF),
        (rid(7), RejectionKind.NOT_FOUND),
        (rid(9), RejectionKind.INVALID),
    ]
    assert rejections[2].message == f"Request ID: {rid(7)} does not exist."


def test_a_422_about_the_whole_call_has_no_per_id_rejections() -> None:
    assert parse_cancel_rejections([rid(1)], {"code": 53, "reason": "unexpected"}) == []
    assert parse_cancel_rejections([rid(1)], {"data": {"request_ids": "too many"}}) == []
    assert parse_cancel_rejections([rid(1)], "not json") == []
    listed = parse_cancel_rejections([rid(1)], {"data": {"request_ids.0": ["a", "b"]}})
    assert listed[0].message == "a b"


def test_airalo_error_messages() -> None:
    assert airalo_message({"data": {"due_date": "too soon"}, "meta": {"message": "invalid"}}) == (
        "invalid; due_date: too soon"
    )
    assert airalo_message({"code": 11, "reason": "Insufficient credit"}) == (
        "Insufficient credit (code 11)"
    )
    assert airalo_message({"message": "Too Many Attempts."}) == "Too Many Attempts."


# -- the token cache ---------------------------------------------------------------


class FakeAiralo:
    """A MockTransport handler: issues numbered tokens, checks bearer auth."""

    def __init__(self, expires_in: Any = 86400, *, state_expiry: bool = True) -> None:
        self.expires_in = expires_in
        self.state_expiry = state_expiry
        self.token_requests: list[httpx.Request] = []
        self.valid: set[str] = set()
        self.calls: list[httpx.Request] = []
        self.responder: Callable[[httpx.Request], httpx.Response] = lambda r: httpx.Response(
            200, json={"data": [], "meta": {"message": "ok"}}
        )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/token":
            self.token_requests.append(request)
            token = f"token-{len(self.token_requests)}"
            self.valid.add(token)
            data = {"token_type": "Bearer", "expires_in": self.expires_in, "access_token": token}
            if not self.state_expiry:
                del data["expires_in"]
            return httpx.Response(200, json={"data": data, "meta": {"message": "success"}})
        self.calls.append(request)
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.valid:
            return httpx.Response(
                401, json={"data": [], "meta": {"message": "This action is unauthorized."}}
            )
        return self.responder(request)


def tokens_for(
    fake: FakeAiralo, clock: Callable[[], float] | None = None
) -> tuple[httpx.AsyncClient, AiraloTokens]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake), base_url=BASE)
    tokens = AiraloTokens(
        http, "client", SecretStr("secret"), **({"clock": clock} if clock else {})
    )
    return http, tokens


async def test_token_is_fetched_once_for_concurrent_callers_form_encoded() -> None:
    fake = FakeAiralo()
    http, tokens = tokens_for(fake)
    async with http:
        results = await asyncio.gather(*(tokens.token() for _ in range(20)))

    assert set(results) == {"token-1"}
    assert tokens.fetches == 1 and len(fake.token_requests) == 1
    sent = fake.token_requests[0]
    assert sent.method == "POST"
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(sent.content.decode()) == {
        "client_id": ["client"],
        "client_secret": ["secret"],
        "grant_type": ["client_credentials"],
    }


async def test_token_is_refreshed_early() -> None:
    now = [1000.0]
    fake = FakeAiralo(expires_in=86400)
    http, tokens = tokens_for(fake, clock=lambda: now[0])
    async with http:
        assert await tokens.token() == "token-1"
        now[0] += TOKEN_MAX_AGE.total_seconds() - 1
        assert await tokens.token() == "token-1"
        now[0] += 1
        assert await tokens.token() == "token-2"
    assert tokens.fetches == 2


def test_token_lifetime_is_at_most_an_hour_and_ends_before_expiry() -> None:
    assert token_lifetime(86400) == timedelta(hours=1)
    assert token_lifetime(31_536_000) == timedelta(hours=1)
    assert token_lifetime(1200) == timedelta(minutes=15)
    assert token_lifetime(60) == timedelta(seconds=30)


def test_a_token_answer_without_a_usable_expires_in_gets_the_sdks_hour() -> None:
    assert token_lifetime(None) == TOKEN_MAX_AGE == timedelta(hours=1)
    assert [stated_expiry(v) for v in (None, "", "soon", True, 0, -5, float("nan"))] == [None] * 7
    assert (stated_expiry(3600), stated_expiry("120"), stated_expiry(1.5)) == (3600, 120, 1.5)


@pytest.mark.parametrize(
    "fake",
    [FakeAiralo(state_expiry=False), FakeAiralo(expires_in=None), FakeAiralo(expires_in=0)],
    ids=["missing", "null", "zero"],
)
async def test_without_expires_in_one_token_serves_every_call_for_an_hour(
    fake: FakeAiralo,
) -> None:
    # The SDK's own fixture of the token answer has no expires_in: before, every call
    # fetched a token, against Airalo's limit of a few token requests a minute.
    now = [1000.0]
    http, tokens = tokens_for(fake, clock=lambda: now[0])
    async with http:
        activities = AiraloActivities(http, tokens)
        for _ in range(5):
            await ActivityEnvironment().run(activities.list_future_orders, ListFutureOrders())
            now[0] += 60
        assert len(fake.token_requests) == 1
        now[0] = 1000.0 + TOKEN_MAX_AGE.total_seconds()
        await tokens.token()
    assert len(fake.token_requests) == 2 and len(fake.calls) == 15


async def test_refresh_after_a_401_happens_once_for_everyone() -> None:
    fake = FakeAiralo()
    http, tokens = tokens_for(fake)
    async with http:
        stale = await tokens.token()
        fresh = await asyncio.gather(*(tokens.refresh(stale) for _ in range(5)))
    assert set(fresh) == {"token-2"}
    assert tokens.fetches == 2


async def test_token_rate_limit_is_retryable_after_retry_after() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429, json={"message": "Too Many Attempts."}, headers={"Retry-After": "7"}
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url=BASE) as http:
        with pytest.raises(ApplicationError) as limited:
            await AiraloTokens(http, "client", SecretStr("secret")).token()
    assert limited.value.type == ErrorType.PROVIDER_UNAVAILABLE and not limited.value.non_retryable
    assert limited.value.next_retry_delay == timedelta(seconds=7)


async def test_wrong_credentials_are_not_retried() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401, json={"data": [], "meta": {"message": "This action is unauthorized."}}
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url=BASE) as http:
        with pytest.raises(ApplicationError) as refused:
            await AiraloTokens(http, "client", SecretStr("wrong")).token()
    assert refused.value.non_retryable and "unauthorized" in str(refused.value)
    assert "wrong" not in str(refused.value)


# -- activities against MockTransport ----------------------------------------------


async def run_activity(fake: FakeAiralo, name: str, argument: Any) -> Any:
    """Run one activity method in an activity context, against ``fake``."""
    http, tokens = tokens_for(fake)
    async with http:
        method = getattr(AiraloActivities(http, tokens), name)
        return await ActivityEnvironment().run(method, argument)


async def test_a_401_refreshes_the_token_once_and_resends() -> None:
    fake = FakeAiralo()
    http, tokens = tokens_for(fake)
    async with http:
        activities = AiraloActivities(http, tokens)
        env = ActivityEnvironment()
        pending = ListFutureOrders(statuses=["pending"])
        await env.run(activities.list_future_orders, pending)
        fake.valid.clear()  # Airalo revoked every token
        await env.run(activities.list_future_orders, pending)
        await env.run(activities.list_future_orders, pending)
    assert [c.headers["authorization"] for c in fake.calls] == [
        "Bearer token-1",
        "Bearer token-1",
        "Bearer token-2",
        "Bearer token-2",
    ]
    assert tokens.fetches == 2


async def test_a_second_401_is_a_rejection_not_a_loop() -> None:
    fake = FakeAiralo()
    fake.responder = lambda r: httpx.Response(
        401, json={"data": [], "meta": {"message": "This action is unauthorized."}}
    )
    with pytest.raises(ApplicationError) as refused:
        await run_activity(fake, "list_future_orders", ListFutureOrders())
    assert refused.value.type == ErrorType.PROVIDER_REJECTED and refused.value.non_retryable
    assert len(fake.token_requests) == 2 and len(fake.calls) == 2


def listed_item(request_id: str, status: str = "pending") -> dict[str, Any]:
    return {
        "request_id": request_id,
        "quantity": 1,
        "description": None,
        "status": status,
        "package_id": "pkg",
        "due_date": "2030-01-02 10:00",
        "latest_cancellation_date": "2030-01-01 10:00",
    }


async def test_listing_reads_every_page_of_every_status_and_keeps_the_wanted_ids() -> None:
    def listing(request: httpx.Request) -> httpx.Response:
        status = request.url.params["status"]
        page = int(request.url.params["page"])
        if status != "pending":
            items = [listed_item(rid(90 + len(status)), status)]  # one failed, one retry
            meta = {"message": "success", "current_page": 1, "last_page": 1, "total": 1}
            return httpx.Response(200, json={"data": items, "meta": meta})
        items = [listed_item(rid(page * 10 + n)) for n in range(2)]
        meta = {"message": "success", "current_page": page, "last_page": 3, "total": 6}
        return httpx.Response(200, json={"data": items, "meta": meta})

    fake = FakeAiralo()
    fake.responder = listing
    wanted = [rid(11), rid(31), rid(96), rid(95)]
    found = await run_activity(fake, "list_future_orders", ListFutureOrders(request_ids=wanted))
    assert {(o.request_id, o.status) for o in found.orders} == {
        (rid(11), "pending"),
        (rid(31), "pending"),
        (rid(96), "failed"),
        (rid(95), "retry"),
    }
    assert found.pages == 5 and found.listed == 8
    assert [(c.url.params["status"], c.url.params["page"]) for c in fake.calls] == [
        ("pending", "1"),
        ("pending", "2"),
        ("pending", "3"),
        ("failed", "1"),
        ("retry", "1"),
    ]


async def test_an_order_that_slid_to_a_page_already_read_is_found_by_listing_again() -> None:
    """Airalo pages by number: another saga cancelling an order on page 1 while we read
    page 2 moves page 2's first order onto page 1, and one listing never shows it."""
    pending = [rid(n) for n in range(4)]
    pages_served = []

    def listing(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        pages_served.append(page)
        if len(pages_served) == 2:
            pending.remove(rid(0))  # cancelled elsewhere between our two page reads
        items = [listed_item(r) for r in pending[(page - 1) * 2 : page * 2]]
        last_page = max(1, -(-len(pending) // 2))
        meta = {"message": "success", "current_page": page, "last_page": last_page}
        return httpx.Response(200, json={"data": items, "meta": meta})

    fake = FakeAiralo()
    fake.responder = listing
    request = ListFutureOrders(statuses=["pending"], request_ids=[rid(1), rid(2), rid(3)])

    found = await run_activity(fake, "list_future_orders", request)

    assert sorted(o.request_id for o in found.orders) == [rid(1), rid(2), rid(3)]
    assert pages_served == [1, 2, 1, 2]  # the first listing missed rid(2)


async def test_an_order_that_does_not_exist_is_looked_for_in_a_bounded_number_of_listings() -> None:
    fake = FakeAiralo()
    fake.responder = lambda r: httpx.Response(
        200, json={"data": [listed_item(rid(1))], "meta": {"current_page": 1, "last_page": 1}}
    )
    request = ListFutureOrders(statuses=["pending"], request_ids=[rid(1), rid(2)])

    found = await run_activity(fake, "list_future_orders", request)

    assert [o.request_id for o in found.orders] == [rid(1)]
    assert len(fake.calls) == MAX_LISTINGS


async def test_listing_stops_when_the_api_ignores_pages() -> None:
    full_page = [
        {
            "request_id": rid(n),
            "quantity": 1,
            "package_id": "pkg",
            "due_date": "2030-01-02 10:00",
        }
        for n in range(100)
    ]
    fake = FakeAiralo()
    fake.responder = lambda r: httpx.Response(200, json={"data": full_page, "meta": {}})

    found = await run_activity(fake, "list_future_orders", ListFutureOrders(statuses=["pending"]))

    assert len(found.orders) == 100 and len(fake.calls) == 2


def page_of(items: list[dict[str, Any]], **meta: Any) -> httpx.Response:
    return httpx.Response(200, json={"data": items, "meta": {"message": "success", **meta}})


async def test_a_page_is_one_request_and_returns_only_the_wanted_orders() -> None:
    fake = FakeAiralo()
    fake.responder = lambda r: page_of(
        [listed_item(rid(n), "failed") for n in range(5)], current_page=2, last_page=4
    )
    since = datetime(2030, 1, 1, 9, 30, tzinfo=UTC)
    request = ListFutureOrdersPage(
        status="failed", page=2, request_ids=[rid(3), rid(1), rid(77)], from_due_date=since
    )

    found = await run_activity(fake, "list_future_orders_page", request)

    assert [(o.request_id, o.status) for o in found.orders] == [
        (rid(1), "failed"),
        (rid(3), "failed"),
    ]
    assert found.listed == 5 and not found.last
    assert found.digest == page_digest([rid(n) for n in (4, 3, 2, 1, 0)])
    (sent,) = fake.calls  # one request (the token fetch is the cache's, once per hour)
    assert (sent.method, sent.url.path) == ("GET", "/v2/future-orders")
    assert dict(sent.url.params) == {
        "status": "failed",
        "limit": str(PAGE_SIZE),
        "page": "2",
        "from_due_date": "2030-01-01 09:30",
    }
    assert len(fake.token_requests) == 1


@pytest.mark.parametrize(
    ("items", "meta", "last"),
    [
        (100, {"last_page": 3}, True),  # page 3 of 3
        (100, {"last_page": 4}, False),
        (100, {}, False),  # no last_page: a full page may have a next one
        (99, {}, True),  # a short page is the last
        (0, {"last_page": 9}, True),  # an empty page ends the status, whatever meta says
    ],
)
async def test_a_page_says_whether_it_is_the_last(
    items: int, meta: dict[str, Any], last: bool
) -> None:
    fake = FakeAiralo()
    fake.responder = lambda r: page_of([listed_item(rid(n)) for n in range(items)], **meta)

    found = await run_activity(
        fake, "list_future_orders_page", ListFutureOrdersPage(status="pending", page=3)
    )

    assert found.last is last and found.listed == items and len(found.orders) == items


def test_a_page_digest_names_its_ids_in_any_order() -> None:
    assert page_digest([rid(1), rid(2)]) == page_digest([rid(2), rid(1)])
    assert page_digest([rid(1), rid(2)]) != page_digest([rid(1), rid(3)])
    assert page_digest([]) != page_digest([rid(1)])


async def test_cancel_422_is_returned_as_rejections() -> None:
    def reject(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)["request_ids"]
        body = {
            "data": {"request_ids.1": f"Request ID: {sent[1]} does not exist."},
            "meta": {"message": "the parameter is invalid"},
        }
        return httpx.Response(422, json=body)

    fake = FakeAiralo()
    fake.responder = reject
    result = await run_activity(
        fake, "cancel_future_orders", CancelFutureOrders(request_ids=[rid(1), rid(2)])
    )
    assert not result.accepted and result.attempt == 1
    assert [(r.request_id, r.kind) for r in result.rejections] == [
        (rid(2), RejectionKind.NOT_FOUND)
    ]


@pytest.mark.parametrize("code", [11, 33, 34, 43])
async def test_final_business_errors_are_not_retried(code: int) -> None:
    fake = FakeAiralo()
    fake.responder = lambda r: httpx.Response(422, json={"code": code, "reason": "Nope"})
    with pytest.raises(ApplicationError) as refused:
        await run_activity(fake, "cancel_future_orders", CancelFutureOrders(request_ids=[rid(1)]))
    assert refused.value.non_retryable and refused.value.type == ErrorType.PROVIDER_REJECTED
    assert f"Nope (code {code})" in str(refused.value)


@pytest.mark.parametrize("code", [13, 53])
async def test_transient_business_errors_are_retried(code: int) -> None:
    fake = FakeAiralo()
    fake.responder = lambda r: httpx.Response(422, json={"code": code, "reason": "Maintenance"})
    for activity, argument in (
        ("cancel_future_orders", CancelFutureOrders(request_ids=[rid(1)])),
        ("list_future_orders", ListFutureOrders()),
        ("list_future_orders_page", ListFutureOrdersPage(status="pending", page=1)),
    ):
        with pytest.raises(ApplicationError) as transient:
            await run_activity(fake, activity, argument)
        assert not transient.value.non_retryable
        assert transient.value.type == ErrorType.PROVIDER_UNAVAILABLE
        assert f"Maintenance (code {code})" in str(transient.value)


async def test_create_sends_the_configured_webhook_url() -> None:
    fake = FakeAiralo()
    created = {"request_id": rid(7), "due_date": "2030-01-20 10:00"}
    fake.responder = lambda r: httpx.Response(200, json={"data": created, "meta": {}})
    order = FutureOrder.from_airalo(listed_item(rid(1)) | {"due_date": "2030-01-20 10:00"})
    http, tokens = tokens_for(fake)
    async with http:
        activities = AiraloActivities(http, tokens, "https://partner.example/hook")
        result = await ActivityEnvironment().run(
            activities.create_future_order, CreateFutureOrder(order=order)
        )
    assert result.request_id == rid(7)
    assert json.loads(fake.calls[0].content) == {
        "package_id": "pkg",
        "quantity": 1,
        "due_date": "2030-01-20 10:00",
        "webhook_url": "https://partner.example/hook",
    }


@pytest.mark.parametrize(
    ("configured", "root"),
    [
        ("https://partners-api.airalo.com/v2/", "https://partners-api.airalo.com"),
        ("https://partners-api.airalo.com/v2", "https://partners-api.airalo.com"),
        ("http://127.0.0.1:8099/airalo", "http://127.0.0.1:8099/airalo"),
        ("http://127.0.0.1:8099/airalo/v2/", "http://127.0.0.1:8099/airalo"),
    ],
)
def test_the_documented_base_url_is_not_doubled(configured: str, root: str) -> None:
    settings = AiraloSettings(base_url=configured)
    assert settings.api_root == root
    assert str(httpx.URL(settings.api_root + "/v2/token")).count("/v2/") == 1


def test_lead_time_is_from_the_day_after_tomorrow_utc() -> None:
    late_evening = datetime(2030, 1, 15, 23, 59, tzinfo=UTC)
    assert earliest_due_date(late_evening) == datetime(2030, 1, 17, tzinfo=UTC)
    cet = timezone(timedelta(hours=1))
    # 00:30 in UTC+1 is still the 15th in UTC.
    assert earliest_due_date(datetime(2030, 1, 16, 0, 30, tzinfo=cet)) == late_evening.replace(
        day=17, hour=0, minute=0
    )
    assert can_create_for(datetime(2030, 1, 17, tzinfo=UTC), late_evening)
    assert not can_create_for(datetime(2030, 1, 16, 23, 59, tzinfo=UTC), late_evening)


async def test_cancel_reports_its_attempt() -> None:
    fake = FakeAiralo()
    http, tokens = tokens_for(fake)
    async with http:
        env = ActivityEnvironment()
        env.info = dataclasses.replace(env.info, attempt=3)
        result = await env.run(
            AiraloActivities(http, tokens).cancel_future_orders,
            CancelFutureOrders(request_ids=[rid(1)]),
        )
    assert result.accepted and result.attempt == 3
