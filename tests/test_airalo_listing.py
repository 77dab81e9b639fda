"""Airalo's listing page by page (``workflows/airalo_listing.py``): one activity, one request.

The paging rules run in a real workflow on a real worker (the dev server), with the
production page activity answered by a scripted Airalo (``httpx.MockTransport``), as
``tests/test_airalo_rules.py`` scripts the listing activity of runs from before; and a
saga against the sandbox shows what a lane's limit needs: each listing activity task is
one HTTP request at Airalo (the sandbox's call log).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from temporalio import workflow
from temporalio.client import Client

from activities.airalo import AiraloActivities
from activities.providers import activity_methods
from config.settings import OrchestratorSettings
from domain.airalo import (
    MAX_LISTINGS,
    AiraloActivity,
    FutureOrderCancellationRequest,
    FutureOrdersListed,
)
from domain.common import SagaKind
from sandbox.settings import SandboxSettings
from sandbox.testing import SandboxAdmin, SandboxServer
from starter import sagas
from tests.conftest import provider_settings_for
from tests.helpers import result_of
from tests.test_airalo_rules import FakeAiralo, listed_item, page_of, rid, tokens_for
from worker import ProductWorkers, ProviderClients, build_worker, provider_clients
from workflows import airalo_steps

ORDERS = "/v2/future-orders"
TOKEN = "/v2/token"


@workflow.defn(name="AiraloListingProbe")
class AiraloListingProbe:
    """Test-only: the saga's listing step, as a new run takes it."""

    @workflow.run
    async def run(self, request_ids: list[str] | None) -> FutureOrdersListed:
        return await airalo_steps.list_future_orders(request_ids)


async def list_on_a_worker(
    client: Client, task_queue: str, fake: FakeAiralo, request_ids: list[str] | None
) -> FutureOrdersListed:
    """Run the listing in a workflow on a worker whose Airalo is ``fake``."""
    http, tokens = tokens_for(fake)
    clients = ProviderClients.of(activity_methods(AiraloActivities(http, tokens)))
    async with (
        http,
        build_worker(
            client, task_queue, clients, workflows=[AiraloListingProbe], passthrough=["tests"]
        ),
    ):
        return await client.execute_workflow(
            AiraloListingProbe.run,
            request_ids,
            id=f"listing-{uuid.uuid4()}",
            task_queue=task_queue,
        )


def served(fake: FakeAiralo) -> list[tuple[str, str]]:
    return [(c.url.params["status"], c.url.params["page"]) for c in fake.calls]


def scripted(pending_pages: int, per_page: int = 2) -> Callable[[httpx.Request], httpx.Response]:
    """``pending_pages`` pages of pending orders (``rid(page * 10 + n)``), one failed
    order (``rid(96)``) and one retry order (``rid(95)``)."""

    def listing(request: httpx.Request) -> httpx.Response:
        status = request.url.params["status"]
        page = int(request.url.params["page"])
        if status != "pending":
            return page_of([listed_item(rid(90 + len(status)), status)], last_page=1)
        items = [listed_item(rid(page * 10 + n)) for n in range(per_page)]
        return page_of(items, current_page=page, last_page=pending_pages)

    return listing


async def test_every_page_of_every_status_one_activity_each(
    client: Client, task_queue: str
) -> None:
    fake = FakeAiralo()
    fake.responder = scripted(pending_pages=3)

    everything = await list_on_a_worker(client, task_queue, fake, None)

    assert served(fake) == [
        ("pending", "1"),
        ("pending", "2"),
        ("pending", "3"),
        ("failed", "1"),
        ("retry", "1"),
    ]
    assert everything.pages == 5 and everything.listed == 8
    assert [o.request_id for o in everything.orders] == [
        rid(10),
        rid(11),
        rid(20),
        rid(21),
        rid(30),
        rid(31),
        rid(96),
        rid(95),
    ]


async def test_the_listing_stops_once_every_wanted_order_is_found(
    client: Client, task_queue: str
) -> None:
    fake = FakeAiralo()
    fake.responder = scripted(pending_pages=3)

    found = await list_on_a_worker(client, task_queue, fake, [rid(21), rid(11)])

    # Pending's third page and the other statuses cannot add a wanted order.
    assert served(fake) == [("pending", "1"), ("pending", "2")]
    assert [o.request_id for o in found.orders] == [rid(11), rid(21)]
    assert found.pages == 2 and found.listed == 4


async def test_an_order_that_slid_to_a_page_already_read_is_found_by_listing_again(
    client: Client, task_queue: str
) -> None:
    """Airalo pages by number: another saga cancelling an order on page 1 while we read
    page 2 moves page 2's first order onto page 1, and one listing never shows it."""
    pending = [rid(n) for n in range(4)]

    def listing(request: httpx.Request) -> httpx.Response:
        if request.url.params["status"] != "pending":
            return page_of([], last_page=1)
        page = int(request.url.params["page"])
        if len([c for c in fake.calls if c.url.params["status"] == "pending"]) == 2:
            pending.remove(rid(0))  # cancelled elsewhere between our two page reads
        items = [listed_item(r) for r in pending[(page - 1) * 2 : page * 2]]
        return page_of(items, current_page=page, last_page=max(1, -(-len(pending) // 2)))

    fake = FakeAiralo()
    fake.responder = listing

    found = await list_on_a_worker(client, task_queue, fake, [rid(1), rid(2), rid(3)])

    assert sorted(o.request_id for o in found.orders) == [rid(1), rid(2), rid(3)]
    # The first listing missed rid(2); the second finds it on page 1 and stops.
    assert served(fake) == [
        ("pending", "1"),
        ("pending", "2"),
        ("failed", "1"),
        ("retry", "1"),
        ("pending", "1"),
    ]


async def test_an_order_that_does_not_exist_is_looked_for_in_a_bounded_number_of_listings(
    client: Client, task_queue: str
) -> None:
    fake = FakeAiralo()
    fake.responder = lambda r: page_of([listed_item(rid(1))], current_page=1, last_page=1)

    found = await list_on_a_worker(client, task_queue, fake, [rid(1), rid(2)])

    assert [o.request_id for o in found.orders] == [rid(1)]
    assert served(fake) == [("pending", "1"), ("failed", "1"), ("retry", "1")] * MAX_LISTINGS
    # Once found, rid(1) is no longer asked for: the pages return nothing more.
    assert found.pages == 3 * MAX_LISTINGS


async def test_a_status_stops_when_the_api_ignores_pages(client: Client, task_queue: str) -> None:
    full_page = [listed_item(rid(n)) for n in range(100)]
    fake = FakeAiralo()
    fake.responder = lambda r: page_of(full_page if r.url.params["status"] == "pending" else [])

    everything = await list_on_a_worker(client, task_queue, fake, None)

    assert len(everything.orders) == 100
    assert served(fake) == [("pending", "1"), ("pending", "2"), ("failed", "1"), ("retry", "1")]


async def test_each_airalo_listing_activity_is_one_request_at_the_sandbox(
    client: Client, settings: OrchestratorSettings, uid: str
) -> None:
    """A lane's limit counts activity tasks: it holds at Airalo only if each is one
    request. A saga whose orders span two pages of pending, one failed and one retry
    order, and an unknown id (so every listing reads everything, three times)."""
    due = datetime.now(UTC) + timedelta(days=5)
    with (
        SandboxServer(SandboxSettings(airalo_token_rate_limit_per_minute=1000)) as own,
        SandboxAdmin(own.base_url) as admin,
    ):
        for n in range(100):
            admin.airalo_seed_future_order(f"pkg-{uid}-{n}", due)
        later = admin.airalo_seed_future_order(f"pkg-{uid}", due + timedelta(days=1))
        failed = admin.airalo_seed_future_order(f"pkg-{uid}", due, status="failed")
        retry = admin.airalo_seed_future_order(f"pkg-{uid}", due, status="retry")
        unknown = uuid.uuid4().hex[:25]
        ids = [later["request_id"], failed["request_id"], retry["request_id"], unknown]
        request = FutureOrderCancellationRequest.model_validate({"requestIds": ids})
        workers: ProductWorkers
        async with (
            provider_clients(provider_settings_for(own)) as provider,
            build_worker(client, settings.task_queue, provider) as workers,
        ):
            assert workers.lanes  # the listing runs on Airalo's lane
            started = await sagas.start(
                client, SagaKind.FUTURE_ORDER_CANCELLATION, request, settings
            )
            final = await result_of(client, started.workflow_id)
        listings = admin.calls(provider="airalo", method="GET", path=ORDERS)
        tokens = admin.calls(provider="airalo", method="POST", path=TOKEN)

    assert final["phase"] == "COMPLETED"
    history = await client.get_workflow_handle(started.workflow_id).fetch_history()
    scheduled = {
        e.event_id
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name
        == AiraloActivity.LIST_FUTURE_ORDERS_PAGE
    }
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
        and e.activity_task_started_event_attributes.scheduled_event_id in scheduled
    ]
    assert attempts == [1] * len(scheduled)  # no retries: one task each
    assert len(listings) == len(scheduled)
    # The first lookup: every page of every status, three listings (the unknown id).
    pages = [(c["query"]["status"], c["query"]["page"]) for c in listings]
    assert pages[:12] == [("pending", "1"), ("pending", "2"), ("failed", "1"), ("retry", "1")] * 3
    # One token for the worker process, cached for every request after.
    assert len(tokens) == 1
