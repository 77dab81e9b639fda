"""Listing Airalo's future orders page by page: the paging rules, once, in the workflow.

Airalo lists one status per request and pages by page number. Each page is an
activity of its own (``airalo.list_future_orders_page``): a lane's limit counts
activity tasks, so one HTTP request per activity is what makes
``CANCEL_AIRALO_MAX_CALLS_PER_SECOND`` the rate Airalo sees (README, "Sizing").
The rules the single listing activity applied inside itself apply here:

* every status in the request (pending, failed, retry), each page by page until its
  last page (``meta.last_page``, or a short or empty page);
* a page equal to one already read of that status means Airalo ignored ``page``:
  stop, not loop; and never more than :data:`~domain.airalo.MAX_PAGES` pages a status;
* orders are deduplicated by request id, the first listing of an order kept (an order
  can slide between pages while other sagas cancel);
* with ``request_ids``, a listing that missed some of them is read again, up to
  :data:`~domain.airalo.MAX_LISTINGS` listings; and the listing stops as soon as every
  one of them is found (the pages after cannot change what the saga learns).

Each page activity is asked only for the ids still missing, and returns only those of
its orders: the history holds what the saga needs, not the partner's whole list.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.airalo import (
        MAX_LISTINGS,
        MAX_PAGES,
        FutureOrder,
        FutureOrdersListed,
        ListFutureOrders,
        ListFutureOrdersPage,
    )
    from domain.lanes import Urgency
    from domain.provider_activities import AiraloCalls

from workflows.provider_calls import call


class _Listing:
    """The orders found so far, and the pages read to find them."""

    def __init__(self, request: ListFutureOrders) -> None:
        self.request = request
        self.orders: dict[str, FutureOrder] = {}
        self.pages = 0
        self.listed = 0

    def missing(self) -> list[str] | None:
        """The wanted ids not found yet (``None``: every order is wanted)."""
        if self.request.request_ids is None:
            return None
        return [i for i in self.request.request_ids if i not in self.orders]

    def complete(self) -> bool:
        """Every wanted order found: no page can add anything the saga asked for."""
        return self.request.request_ids is not None and not self.missing()

    async def read_status(self, status: str, urgency: Urgency) -> None:
        """The pages of one status, one activity each, until a rule above stops it."""
        digests: set[str] = set()
        for page in range(1, MAX_PAGES + 1):
            if self.complete():
                return
            read = await call(
                AiraloCalls.list_future_orders_page,
                ListFutureOrdersPage(
                    status=status,
                    page=page,
                    request_ids=self.missing(),
                    from_due_date=self.request.from_due_date,
                    to_due_date=self.request.to_due_date,
                ),
                f"Airalo GET /v2/future-orders ({status}, page {page})",
                urgency=urgency,
            )
            self.pages += 1
            self.listed += read.listed
            for order in read.orders:
                self.orders.setdefault(order.request_id, order)
            if read.last or read.digest in digests:
                return
            digests.add(read.digest)


async def list_page_by_page(request: ListFutureOrders, urgency: Urgency) -> FutureOrdersListed:
    """The listed (still existing) future orders, ``request.request_ids`` only if given."""
    listing = _Listing(request)
    for _ in range(MAX_LISTINGS):
        for status in request.statuses:
            await listing.read_status(status, urgency)
        if request.request_ids is None or listing.complete():
            break
    return FutureOrdersListed(
        orders=list(listing.orders.values()), pages=listing.pages, listed=listing.listed
    )
