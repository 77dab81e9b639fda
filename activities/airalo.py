"""Airalo Partner API v2 activities: one activity per HTTP call, plus the token cache.

The httpx client (base URL, timeouts) is injected by the worker, and so is one
:class:`AiraloTokens` per worker process: the client credentials and the bearer
token stay in the worker's memory, never in workflow input, history or logs.

Every request the official SDK signs is signed the same way here
(:mod:`domain.airalo_signature`): ``POST /v2/token``, ``POST /v2/future-orders`` and
``POST /v2/cancel-future-orders`` carry ``airalo-signature``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
from pydantic import SecretStr
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.lookups import look_up
from activities.provider_http import (
    PROVIDER_REJECTED,
    PROVIDER_UNAVAILABLE,
    body_of,
    raise_for_provider,
    unavailable,
)
from config.settings import AiraloSettings
from domain import airalo_signature
from domain.airalo import (
    MAX_LISTINGS,
    MAX_PAGES,
    TRANSIENT_BUSINESS_CODES,
    AiraloActivity,
    CancelFutureOrders,
    CancelFutureOrdersResult,
    CreatedFutureOrder,
    CreateFutureOrder,
    FutureOrder,
    FutureOrdersListed,
    FutureOrdersPage,
    ListFutureOrders,
    ListFutureOrdersPage,
    business_error,
    format_airalo_date,
    page_digest,
    parse_cancel_rejections,
)

PROVIDER = "Airalo"
TOKEN_PATH = "/v2/token"
FUTURE_ORDERS_PATH = "/v2/future-orders"
CANCEL_PATH = "/v2/cancel-future-orders"
PAGE_SIZE = 100

# Token lifetime: Airalo's docs say both 24 h and one year, so we trust neither.
# A token is used for at most an hour (what the official SDK caches, ignoring
# ``expires_in``), and always refreshed before ``expires_in`` runs out (5 minutes
# early, or halfway for very short lifetimes). An answer without a usable
# ``expires_in`` (the SDK's own test fixture has none) gets the hour. The rate limit
# on /v2/token (3-5 per minute) makes this one fetch per hour per worker process,
# plus one after a 401.
TOKEN_MAX_AGE = timedelta(hours=1)
TOKEN_EARLY_REFRESH = timedelta(minutes=5)


def airalo_message(body: Any) -> str | None:
    """Airalo's error shapes: validation ``{data: {field: msg}, meta: {message}}``,
    business ``{code, reason}``, and Laravel's bare ``{message}`` on 429."""
    if not isinstance(body, dict):
        return str(body) if body else None
    parts: list[str] = []
    meta = body.get("meta")
    if isinstance(meta, dict) and meta.get("message"):
        parts.append(str(meta["message"]))
    data = body.get("data")
    if isinstance(data, dict):
        parts += [f"{field}: {message}" for field, message in data.items()]
    if body.get("reason"):
        code = f" (code {body['code']})" if body.get("code") is not None else ""
        parts.append(f"{body['reason']}{code}")
    if not parts and body.get("message"):
        parts.append(str(body["message"]))
    return "; ".join(parts) or None


def raise_for_airalo(response: httpx.Response) -> None:
    """:func:`raise_for_provider`, plus Airalo's business errors ``{code, reason}``:
    codes 13 (operator maintenance) and 53 (unexpected error) are transient and
    retried; every other code is a final rejection carrying Airalo's reason."""
    if response.is_success:
        return
    body = body_of(response)
    found = business_error(body)
    if found is not None:
        code, reason = found
        transient = code in TRANSIENT_BUSINESS_CODES
        raise ApplicationError(
            f"{PROVIDER} answered {response.status_code} to {response.request.method} "
            f"{response.request.url.path}: {reason} (code {code})",
            {"provider": PROVIDER, "status": response.status_code, "code": code, "reason": reason},
            type=PROVIDER_UNAVAILABLE if transient else PROVIDER_REJECTED,
            non_retryable=not transient,
        )
    raise_for_provider(response, PROVIDER, airalo_message)


def token_lifetime(expires_in: float | None) -> timedelta:
    """How long a freshly issued token is used before it is replaced.

    ``None`` (Airalo stated no lifetime) is the SDK's hour.
    """
    if expires_in is None:
        return TOKEN_MAX_AGE
    expires = timedelta(seconds=max(expires_in, 0))
    return min(TOKEN_MAX_AGE, max(expires - TOKEN_EARLY_REFRESH, expires / 2))


def stated_expiry(value: Any) -> float | None:
    """``expires_in`` as seconds, or ``None`` when the answer states no usable lifetime.

    Missing, ``null``, not a number, or not positive: a token that claims to be
    expired already would otherwise be fetched again for every call, against the
    token rate limit; a token Airalo really revoked earns a 401, and one refresh.
    """
    if isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


class AiraloTokens:
    """The credentials of one worker process: the bearer token (fetched once, shared,
    refreshed early) and the client secret that signs requests.

    Concurrent activities wait on one lock, so a cold cache or an expired token
    costs one ``POST /v2/token`` however many calls need it.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        client_id: str,
        client_secret: SecretStr,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._client_id = client_id
        self._client_secret = client_secret
        self._clock = clock
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0
        # How many tokens this cache fetched (tests and metrics; never the token).
        self.fetches = 0

    @classmethod
    def from_settings(cls, http: httpx.AsyncClient, settings: AiraloSettings) -> AiraloTokens:
        return cls(http, settings.client_id, settings.client_secret)

    async def token(self) -> str:
        """A valid token: the cached one, or a new one if it is due for refresh."""
        async with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                await self._fetch()
            assert self._token is not None
            return self._token

    async def refresh(self, rejected: str) -> str:
        """A new token after ``rejected`` got a 401 (unless another call already
        replaced it while we waited for the lock)."""
        async with self._lock:
            if self._token is None or self._token == rejected:
                await self._fetch()
            assert self._token is not None
            return self._token

    def signature(self, payload: dict[str, Any]) -> dict[str, str]:
        """The ``airalo-signature`` header for ``payload``, as the official SDK signs it."""
        secret = self._client_secret.get_secret_value()
        return {airalo_signature.HEADER: airalo_signature.sign(payload, secret)}

    async def _fetch(self) -> None:
        # The SDK's token payload, in its order; signed as JSON, sent as a form.
        form = {
            "client_id": self._client_id,
            "client_secret": self._client_secret.get_secret_value(),
            "grant_type": "client_credentials",
        }
        try:
            # httpx form-encodes ``data=`` (application/x-www-form-urlencoded).
            response = await self._http.post(TOKEN_PATH, data=form, headers=self.signature(form))
        except httpx.HTTPError as error:
            raise unavailable(PROVIDER, error) from error
        raise_for_airalo(response)
        data = (body_of(response) or {}).get("data") or {}
        token = data.get("access_token") if isinstance(data, dict) else None
        if not token:
            raise ApplicationError(
                "Airalo answered /v2/token without an access_token",
                type=PROVIDER_REJECTED,
                non_retryable=True,
            )
        self._token = str(token)
        lifetime = token_lifetime(stated_expiry(data.get("expires_in")))
        self._refresh_at = self._clock() + lifetime.total_seconds()
        self.fetches += 1
        if activity.in_activity():
            activity.logger.info(
                "Fetched an Airalo access token (used for %ss)", int(lifetime.total_seconds())
            )


class AiraloActivities:
    """``webhook_url`` (``AIRALO_WEBHOOK_URL``) goes into every future order we create:
    Airalo needs a delivery destination, this one or the partner's opted-in URL."""

    def __init__(
        self, http: httpx.AsyncClient, tokens: AiraloTokens, webhook_url: str | None = None
    ) -> None:
        self._http = http
        self._tokens = tokens
        self._webhook_url = webhook_url

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One authenticated request; a 401 refreshes the token once and resends."""
        token = await self._tokens.token()
        response = await self._request(method, path, token, **kwargs)
        if response.status_code == 401:
            token = await self._tokens.refresh(token)
            response = await self._request(method, path, token, **kwargs)
        return response

    async def _send_signed(self, path: str, payload: dict[str, Any]) -> httpx.Response:
        """``POST`` a JSON ``payload`` signed as the official SDK signs it.

        The body is the signed text itself (:func:`airalo_signature.canonical`): valid
        JSON for the same payload, so the signature matches whether Airalo checks the
        bytes or re-encodes the parsed body as the SDK's own check does.
        """
        headers = {"Content-Type": "application/json", **self._tokens.signature(payload)}
        content = airalo_signature.canonical(payload)
        return await self._send("POST", path, content=content, headers=headers)

    async def _request(
        self,
        method: str,
        path: str,
        token: str,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        try:
            return await self._http.request(
                method,
                path,
                headers={**(headers or {}), "Authorization": f"Bearer {token}"},
                **kwargs,
            )
        except httpx.HTTPError as error:
            raise unavailable(PROVIDER, error) from error

    async def _page(
        self,
        status: str,
        page: int,
        from_due_date: datetime | None,
        to_due_date: datetime | None,
    ) -> tuple[list[FutureOrder], bool]:
        """One ``GET /v2/future-orders`` page of one status (Airalo lists one status per
        request): its orders, and whether it is the last page."""
        params: dict[str, str | int] = {"status": status, "limit": PAGE_SIZE, "page": page}
        if from_due_date is not None:
            params["from_due_date"] = format_airalo_date(from_due_date)
        if to_due_date is not None:
            params["to_due_date"] = format_airalo_date(to_due_date)
        response = await self._send("GET", FUTURE_ORDERS_PATH, params=params)
        raise_for_airalo(response)
        body = response.json()
        items = [FutureOrder.from_airalo(item) for item in body.get("data") or []]
        last_page = (body.get("meta") or {}).get("last_page")
        last = page >= int(last_page) if last_page is not None else len(items) < PAGE_SIZE
        return items, last or not items

    async def _list(self, request: ListFutureOrders, status: str) -> tuple[list[FutureOrder], int]:
        """Every page of one status, in one activity: the listing of runs from before
        patch ``airalo-list-page-by-page``, and a retried create's look-up."""
        orders: dict[str, FutureOrder] = {}
        page = 1
        while True:
            items, last = await self._page(status, page, request.from_due_date, request.to_due_date)
            new = [order for order in items if order.request_id not in orders]
            orders.update((order.request_id, order) for order in new)
            # A page with nothing new means the API ignored ``page``: stop, not loop.
            if last or not new or page >= MAX_PAGES:
                return list(orders.values()), page
            page += 1

    @activity.defn(name=AiraloActivity.LIST_FUTURE_ORDERS_PAGE)
    async def list_future_orders_page(self, request: ListFutureOrdersPage) -> FutureOrdersPage:
        """``GET /v2/future-orders``: one page of one status, one HTTP request (plus a
        token fetch when the worker's token is due, and one resend after a 401).

        Returns only the orders in ``request.request_ids`` (all, without them), the
        page's size and a digest of its ids: a page can hold a hundred orders, the
        workflow's history only what it needs. The paging rules (statuses, the last
        page, a repeated page, :data:`MAX_PAGES`, re-listing) are the workflow's
        (``workflows/airalo_listing.py``)."""
        items, last = await self._page(
            request.status, request.page, request.from_due_date, request.to_due_date
        )
        wanted = items
        if request.request_ids is not None:
            ids = set(request.request_ids)
            wanted = [order for order in items if order.request_id in ids]
        return FutureOrdersPage(
            orders=wanted,
            listed=len(items),
            last=last,
            digest=page_digest([order.request_id for order in items]),
        )

    @activity.defn(name=AiraloActivity.LIST_FUTURE_ORDERS)
    async def list_future_orders(self, request: ListFutureOrders) -> FutureOrdersListed:
        """``GET /v2/future-orders``, all pages, once per status in ``request.statuses``
        (pending, failed and retry by default): the orders that still exist, each with
        its details and cut-off. Processed and cancelled orders are not listed.

        Several HTTP requests in one activity, so Airalo sees a multiple of its lane's
        limit: runs from before patch ``airalo-list-page-by-page`` still call it; newer
        ones call :meth:`list_future_orders_page` once per page.

        With ``request_ids``, a listing that missed some of them is read again
        (:data:`MAX_LISTINGS`): pages shift while other sagas cancel orders."""
        orders: dict[str, FutureOrder] = {}
        pages = 0
        for _ in range(MAX_LISTINGS):
            for status in request.statuses:
                found, read = await self._list(request, status)
                pages += read
                for order in found:
                    orders.setdefault(order.request_id, order)
            if request.request_ids is None or set(request.request_ids) <= orders.keys():
                break
        listed = list(orders.values())
        wanted = listed
        if request.request_ids is not None:
            ids = set(request.request_ids)
            wanted = [order for order in listed if order.request_id in ids]
        return FutureOrdersListed(orders=wanted, pages=pages, listed=len(listed))

    @activity.defn(name=AiraloActivity.CANCEL_FUTURE_ORDERS)
    async def cancel_future_orders(self, request: CancelFutureOrders) -> CancelFutureOrdersResult:
        """``POST /v2/cancel-future-orders`` for at most ten IDs.

        A 422 naming ``request_ids.N`` rejects the whole call; it is returned (not
        raised) as per-ID rejections so the saga can drop those and resend the rest.
        A business error ``{code, reason}`` is retried for codes 13 and 53 and
        final otherwise; any other 4xx is a non-retryable ``ProviderRejected``;
        5xx, 429 and lost responses are retried by the activity's policy.
        """
        attempt = activity.info().attempt
        response = await self._send_signed(CANCEL_PATH, {"request_ids": request.request_ids})
        if response.status_code == 422:
            rejections = parse_cancel_rejections(request.request_ids, body_of(response))
            if rejections:
                return CancelFutureOrdersResult(
                    request_ids=request.request_ids, rejections=rejections, attempt=attempt
                )
        raise_for_airalo(response)
        return CancelFutureOrdersResult(request_ids=request.request_ids, attempt=attempt)

    @activity.defn(name=AiraloActivity.CREATE_FUTURE_ORDER)
    async def create_future_order(self, request: CreateFutureOrder) -> CreatedFutureOrder:
        """``POST /v2/future-orders`` with a cancelled order's recorded details.

        Airalo has no idempotency key. On a retry (the previous attempt may have
        created the order and lost the response) look for an order with the same
        details that was not there before we started, and send only if there is none.
        """
        order = request.order
        if activity.info().attempt > 1:
            found = await look_up(lambda: self._find_created(request))
            if found is not None:
                activity.logger.info("Found the order an earlier attempt created")
                return CreatedFutureOrder(
                    original_request_id=order.request_id,
                    request_id=found.request_id,
                    due_date=found.due_date,
                    latest_cancellation_date=found.latest_cancellation_date,
                    recovered=True,
                )
        body: dict[str, Any] = {
            "package_id": order.package_id,
            "quantity": order.quantity,
            "due_date": format_airalo_date(order.due_date),
        }
        if order.description:
            body["description"] = order.description
        if self._webhook_url:
            body["webhook_url"] = self._webhook_url
        response = await self._send_signed(FUTURE_ORDERS_PATH, body)
        raise_for_airalo(response)
        data = response.json()["data"]
        return CreatedFutureOrder(
            original_request_id=order.request_id,
            request_id=data["request_id"],
            due_date=data.get("due_date") or order.due_date,
            latest_cancellation_date=data.get("latest_cancellation_date")
            or order.latest_cancellation_date,
        )

    async def _find_created(self, request: CreateFutureOrder) -> FutureOrder | None:
        due = request.order.due_date
        # A new order is pending until its due date.
        window = ListFutureOrders(from_due_date=due, to_due_date=due)
        known = {*request.identical_before, request.order.request_id}
        for _ in range(MAX_LISTINGS):  # not found may mean missed: sending again doubles
            orders, _ = await self._list(window, "pending")
            for candidate in orders:
                if candidate.request_id not in known and candidate.same_order_as(request.order):
                    return candidate
        return None
