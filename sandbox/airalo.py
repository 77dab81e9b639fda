"""Airalo Partner API v2: access tokens and future (scheduled) eSIM orders.

A pending future order *fires* (becomes ``processed``) once the clock reaches its due date;
like every time-dependent status here it is computed lazily when orders are read (and by the
served sandbox's ticker). ``failed`` and ``retry`` orders only come from the admin API and
never change by themselves; the admin API can fire any open order at once. Every firing is
reported to :attr:`AiraloStore.on_fired` (the webhook outbox, ``sandbox/webhooks``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import JSONResponse, Response

from sandbox.airalo_signature import AIRALO_SIGNATURE_HEADER, airalo_signature_matches
from sandbox.clock import as_utc, format_ms
from sandbox.common import ALPHANUMERIC, SandboxContext, random_id, read_payload
from sandbox.errors import FieldError, ProviderError, ProviderProfile, retry_after_header
from sandbox.rate_limits import SlidingWindow

DUE_DATE_FORMAT = "%Y-%m-%d %H:%M"
DATE_FORMAT = "%Y-%m-%d"
REQUEST_ID_LENGTH = 25
REQUEST_ID_ALPHABET = ALPHANUMERIC + "_-"
MAX_CANCEL_IDS = 10
MIN_QUANTITY, MAX_QUANTITY = 1, 50
#: Future orders are accepted "from the day after tomorrow (UTC)": calendar days, not hours.
MIN_LEAD_DAYS = 2
MAX_LEAD_TIME = timedelta(days=365)
CANCELLATION_CUTOFF = timedelta(hours=24)
TOKEN_WINDOW = timedelta(minutes=1)
DEFAULT_LIMIT = 50
SHARING_OPTIONS = ("link", "pdf")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

INVALID_MESSAGE = "the parameter is invalid"
UNAUTHORIZED_MESSAGE = "This action is unauthorized."
SUCCESS_MESSAGE = "success"
CANCELLED_MESSAGE = "Future orders cancelled successfully"

PENDING: Final = "pending"
PROCESSED: Final = "processed"
CANCELLED: Final = "cancelled"
FAILED: Final = "failed"
RETRY: Final = "retry"
#: Statuses ``GET /v2/future-orders`` can filter on (``pending`` when none is given).
LISTED_STATUSES = (PENDING, FAILED, RETRY)
#: Statuses that can still be cancelled (subject to the 24 h rule).
OPEN_STATUSES = LISTED_STATUSES
OrderStatus = Literal["pending", "processed", "cancelled", "failed", "retry"]


# --------------------------------------------------------------------------- errors


def render_error(error: ProviderError, _path: str) -> Response:
    """``{"data": {field: message} | [], "meta": {"message": ...}}``; 429 is Laravel's bare body."""
    if error.status == 429:
        body: dict[str, Any] = {"message": error.message}
    else:
        data = {item.field: item.message for item in error.fields} if error.fields else []
        body = {"data": data, "meta": {"message": error.message}}
    return JSONResponse(body, status_code=error.status, headers=error.headers)


PROFILE = ProviderProfile(
    name="airalo",
    render=render_error,
    retry_headers=retry_after_header,
    rate_limit_message="Too Many Attempts.",
)


def invalid(fields: dict[str, str]) -> ProviderError:
    errors = [FieldError(name, message) for name, message in fields.items()]
    return ProviderError(status=422, message=INVALID_MESSAGE, fields=errors)


def unauthorized() -> ProviderError:
    return ProviderError(status=401, message=UNAUTHORIZED_MESSAGE)


def success(
    data: Any, message: str = SUCCESS_MESSAGE, meta: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {"data": data, "meta": {"message": message, **(meta or {})}}


# --------------------------------------------------------------------------- validation


def format_due(moment: datetime) -> str:
    return moment.strftime(DUE_DATE_FORMAT)


def parse_due(value: Any) -> datetime | None:
    """``YYYY-MM-DD HH:MM`` in UTC, strictly."""
    if not isinstance(value, str):
        return None
    try:
        return as_utc(datetime.strptime(value, DUE_DATE_FORMAT))
    except ValueError:
        return None


def _label(name: str) -> str:
    """Laravel's attribute name in messages: ``package_id`` → ``package id``."""
    return name.replace("_", " ")


def _json_object(payload: Any) -> dict[str, Any]:
    return payload if isinstance(payload, dict) else {}


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, str) and value.isdigit())


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str


def parse_credentials(payload: Any) -> Credentials:
    body = _json_object(payload)
    errors: dict[str, str] = {}
    for name in ("client_id", "client_secret", "grant_type"):
        if body.get(name) in (None, ""):
            errors[name] = f"The {_label(name)} field is required."
    if "grant_type" not in errors and body["grant_type"] != "client_credentials":
        errors["grant_type"] = "The selected grant type is invalid."
    if errors:
        raise invalid(errors)
    return Credentials(str(body["client_id"]), str(body["client_secret"]))


@dataclass(frozen=True)
class FutureOrderRequest:
    package_id: str
    quantity: int
    due_date: datetime
    description: str | None
    options: dict[str, Any]


def _check_optional_fields(body: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """The delivery options; they are stored but have no effect in the sandbox."""
    for name in ("description", "brand_settings_name", "webhook_url", "to_email"):
        if body.get(name) is not None and not isinstance(body[name], str):
            errors[name] = f"The {_label(name)} field must be a string."
    webhook = body.get("webhook_url")
    if isinstance(webhook, str) and not webhook.startswith(("http://", "https://")):
        errors["webhook_url"] = "The webhook url field must be a valid URL."
    email = body.get("to_email")
    if isinstance(email, str) and not EMAIL_PATTERN.fullmatch(email):
        errors["to_email"] = "The to email field must be a valid email address."
    sharing = body.get("sharing_option")
    if email is not None and sharing is None:
        errors["sharing_option"] = "The sharing option field is required when to email is present."
    if sharing is not None:
        if not isinstance(sharing, list):
            errors["sharing_option"] = "The sharing option field must be an array."
        for index, option in enumerate(sharing if isinstance(sharing, list) else []):
            if option not in SHARING_OPTIONS:
                errors[f"sharing_option.{index}"] = (
                    f"The selected sharing_option.{index} is invalid."
                )
    copies = body.get("copy_address")
    if copies is not None and not isinstance(copies, list):
        errors["copy_address"] = "The copy address field must be an array."
    for index, address in enumerate(copies if isinstance(copies, list) else []):
        if not isinstance(address, str) or not EMAIL_PATTERN.fullmatch(address):
            message = f"The copy_address.{index} field must be a valid email address."
            errors[f"copy_address.{index}"] = message
    names = ("webhook_url", "brand_settings_name", "to_email", "sharing_option", "copy_address")
    return {name: body[name] for name in names if body.get(name) is not None}


def earliest_due(now: datetime) -> datetime:
    """Midnight UTC of the day after tomorrow: the first due date a new order may have."""
    today = as_utc(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + timedelta(days=MIN_LEAD_DAYS)


def _check_due_date(value: Any, now: datetime, errors: dict[str, str]) -> datetime | None:
    if value in (None, ""):
        errors["due_date"] = "The due date field is required."
        return None
    due = parse_due(value)
    if due is None:
        errors["due_date"] = "The due date field must match the format Y-m-d H:i."
    elif due < earliest_due(now):
        errors["due_date"] = (
            "The due date must be a date from the day after tomorrow (UTC): "
            f"{format_due(earliest_due(now))} or later."
        )
    elif due > now + MAX_LEAD_TIME:
        errors["due_date"] = "The due date must not be more than 1 year in the future."
    return due


def _check_package_id(value: Any, errors: dict[str, str]) -> str | None:
    if value in (None, ""):
        errors["package_id"] = "The package id field is required."
    elif not isinstance(value, str):
        errors["package_id"] = "The package id field must be a string."
    else:
        return value
    return None


def _check_quantity(value: Any, errors: dict[str, str]) -> int | None:
    if value in (None, ""):
        errors["quantity"] = "The quantity field is required."
    elif not _is_integer(value):
        errors["quantity"] = "The quantity field must be an integer."
    elif not MIN_QUANTITY <= int(value) <= MAX_QUANTITY:
        message = f"The quantity field must be between {MIN_QUANTITY} and {MAX_QUANTITY}."
        errors["quantity"] = message
    else:
        return int(value)
    return None


NO_WEBHOOK_MESSAGE = (
    "The webhook url field is required when no async_orders notification URL is opted in."
)


def parse_future_order(
    payload: Any, now: datetime, opted_in_webhook: str | None
) -> FutureOrderRequest:
    """``opted_in_webhook``: the partner's ``async_orders`` URL; without one, the order
    needs ``webhook_url`` ("you must have one of the above")."""
    body = _json_object(payload)
    errors: dict[str, str] = {}
    package_id = _check_package_id(body.get("package_id"), errors)
    quantity = _check_quantity(body.get("quantity"), errors)
    due = _check_due_date(body.get("due_date"), now, errors)
    options = _check_optional_fields(body, errors)
    if body.get("webhook_url") in (None, "") and not opted_in_webhook:
        errors.setdefault("webhook_url", NO_WEBHOOK_MESSAGE)
    if errors:
        raise invalid(errors)
    assert package_id is not None and quantity is not None and due is not None
    return FutureOrderRequest(package_id, quantity, due, body.get("description"), options)


@dataclass(frozen=True)
class ListQuery:
    status: str | None
    limit: int
    page: int
    from_due: datetime | None
    to_due: datetime | None


def _positive_param(raw: str | None, name: str, default: int, errors: dict[str, str]) -> int:
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) < 1:
        errors[name] = f"The {name} field must be at least 1."
        return default
    return int(raw)


def _due_param(
    raw: str | None, name: str, end_of_day: bool, errors: dict[str, str]
) -> datetime | None:
    """``YYYY-MM-DD HH:MM`` or a whole day ``YYYY-MM-DD`` (inclusive)."""
    if raw is None or raw == "":
        return None
    moment = parse_due(raw)
    if moment is not None:
        return moment
    try:
        day = as_utc(datetime.strptime(raw, DATE_FORMAT))
    except ValueError:
        errors[name] = f"The {_label(name)} field must be a valid date."
        return None
    return day + timedelta(hours=23, minutes=59) if end_of_day else day


def parse_list_query(params: dict[str, str]) -> ListQuery:
    errors: dict[str, str] = {}
    status = params.get("status") or None
    if status is not None and status not in LISTED_STATUSES:
        errors["status"] = "The selected status is invalid."
    query = ListQuery(
        status=status,
        limit=_positive_param(params.get("limit"), "limit", DEFAULT_LIMIT, errors),
        page=_positive_param(params.get("page"), "page", 1, errors),
        from_due=_due_param(params.get("from_due_date"), "from_due_date", False, errors),
        to_due=_due_param(params.get("to_due_date"), "to_due_date", True, errors),
    )
    if errors:
        raise invalid(errors)
    return query


def parse_request_ids(payload: Any) -> list[Any]:
    """The ``request_ids`` list; per-item checks need state and happen in the store."""
    ids = _json_object(payload).get("request_ids")
    if not isinstance(ids, list) or not ids:
        raise invalid({"request_ids": "The request ids field is required."})
    if len(ids) > MAX_CANCEL_IDS:
        message = f"The request ids field must not have more than {MAX_CANCEL_IDS} items."
        raise invalid({"request_ids": message})
    return ids


# --------------------------------------------------------------------------- state


@dataclass
class FutureOrder:
    request_id: str
    seq: int
    package_id: str
    quantity: int
    due_date: datetime
    description: str | None
    created_at: datetime
    status: OrderStatus = PENDING
    options: dict[str, Any] = field(default_factory=dict)
    cancelled_at: datetime | None = None
    processed_at: datetime | None = None

    @property
    def latest_cancellation_date(self) -> datetime:
        return self.due_date - CANCELLATION_CUTOFF

    def created_json(self) -> dict[str, Any]:
        """The ``data`` of ``POST /v2/future-orders``."""
        return {
            "request_id": self.request_id,
            "due_date": format_due(self.due_date),
            "latest_cancellation_date": format_due(self.latest_cancellation_date),
            "quantity": self.quantity,
            "package_id": self.package_id,
            "description": self.description,
        }

    def listed_json(self) -> dict[str, Any]:
        """An item of ``GET /v2/future-orders``."""
        return {
            "request_id": self.request_id,
            "quantity": self.quantity,
            "description": self.description,
            "status": self.status,
            "package_id": self.package_id,
            "due_date": format_due(self.due_date),
            "latest_cancellation_date": format_due(self.latest_cancellation_date),
        }

    def internal_json(self) -> dict[str, Any]:
        """Full state for the admin API (sandbox-only fields are camelCase)."""
        return {
            **self.listed_json(),
            "options": dict(self.options),
            "createdAt": format_ms(self.created_at),
            "cancelledAt": format_ms(self.cancelled_at) if self.cancelled_at else None,
            "processedAt": format_ms(self.processed_at) if self.processed_at else None,
        }


@dataclass
class AiraloState:
    """The part of :class:`AiraloStore` that ``--state-file`` keeps (not the tokens)."""

    future_orders: list[FutureOrder]


def _ignore_fired(_order: FutureOrder) -> None:
    """The default :attr:`AiraloStore.on_fired`: nobody listens."""


class AiraloStore:
    """Issued tokens, the token rate limiter and future orders."""

    def __init__(self, context: SandboxContext) -> None:
        self.context = context
        #: Called once for every order that fires (at its due date or by the admin API).
        self.on_fired: Callable[[FutureOrder], None] = _ignore_fired
        self.reset()

    def reset(self) -> None:
        self._tokens: dict[str, datetime] = {}
        self._token_requests = SlidingWindow()
        self._orders: dict[str, FutureOrder] = {}

    def snapshot(self) -> AiraloState:
        """The live future orders (shared objects: serialise them right away)."""
        return AiraloState(future_orders=list(self._orders.values()))

    def restore(self, state: AiraloState) -> None:
        self._orders = {order.request_id: order for order in state.future_orders}

    # ----------------------------------------------------------------- tokens

    def throttle_token_request(self) -> None:
        """Sliding-window limit on ``/v2/token``; every request that passes it counts."""
        now = self.context.now()
        limit = self.context.settings.airalo_token_rate_limit_per_minute
        admission = self._token_requests.admit(now, limit, TOKEN_WINDOW)
        if admission.retry_after is not None:
            raise ProviderError(
                status=429,
                message=PROFILE.rate_limit_message,
                headers=retry_after_header(max(admission.retry_after.total_seconds(), 1), now),
            )

    def issue_token(self, credentials: Credentials) -> dict[str, Any]:
        settings = self.context.settings
        if (credentials.client_id, credentials.client_secret) != (
            settings.airalo_client_id,
            settings.airalo_client_secret,
        ):
            raise unauthorized()
        token = random_id(64, REQUEST_ID_ALPHABET)
        expires_in = settings.airalo_token_expires_in
        self._tokens[token] = self.context.now() + timedelta(seconds=expires_in)
        return {"token_type": "Bearer", "expires_in": expires_in, "access_token": token}

    def check_token(self, authorization: str | None) -> None:
        scheme, _, token = (authorization or "").partition(" ")
        expires_at = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if expires_at is None or self.context.now() >= expires_at:
            raise unauthorized()

    def check_signature(self, payload: Any, signature: str | None) -> None:
        """With ``airalo_require_signature``: ``signature`` must sign the parsed body as the
        official SDK signs it, else the documented 401 (an unparsable body never matches)."""
        settings = self.context.settings
        if not settings.airalo_require_signature:
            return
        if payload is None or not airalo_signature_matches(
            settings.airalo_client_secret, payload, signature
        ):
            raise unauthorized()

    def revoke_tokens(self) -> int:
        revoked = len(self._tokens)
        self._tokens.clear()
        return revoked

    # ----------------------------------------------------------------- future orders

    def _settle(self, now: datetime) -> None:
        """Fire every pending order whose due date has come (in due-date order)."""
        due = [o for o in self._orders.values() if o.status == PENDING and now >= o.due_date]
        for order in sorted(due, key=lambda o: (o.due_date, o.seq)):
            order.status = PROCESSED
            order.processed_at = order.due_date
            self.on_fired(order)

    def tick(self) -> None:
        """Evaluate due dates now (the served sandbox's ticker, ``POST /_sandbox/tick``)."""
        self._settle(self.context.now())

    def fire(self, request_id: str) -> FutureOrder | None:
        """Admin: fire an open (``pending``/``failed``/``retry``) order now; ``None`` if
        unknown. :class:`ValueError` if it is already processed or cancelled."""
        order = self.get(request_id)
        if order is None:
            return None
        if order.status not in OPEN_STATUSES:
            raise ValueError(f"{request_id} is {order.status} and can not fire")
        order.status = PROCESSED
        order.processed_at = self.context.now()
        self.on_fired(order)
        return order

    def _new_request_id(self) -> str:
        while (candidate := random_id(REQUEST_ID_LENGTH, REQUEST_ID_ALPHABET)) in self._orders:
            pass
        return candidate

    def add(
        self,
        request: FutureOrderRequest,
        *,
        request_id: str | None = None,
        status: OrderStatus = PENDING,
    ) -> FutureOrder:
        now = self.context.now()
        order = FutureOrder(
            request_id=request_id or self._new_request_id(),
            seq=len(self._orders),
            package_id=request.package_id,
            quantity=request.quantity,
            due_date=request.due_date,
            description=request.description,
            created_at=now,
            status=status,
            options=request.options,
            cancelled_at=now if status == CANCELLED else None,
            processed_at=now if status == PROCESSED else None,
        )
        self._orders[order.request_id] = order
        return order

    def contains(self, request_id: str) -> bool:
        return request_id in self._orders

    def get(self, request_id: str) -> FutureOrder | None:
        self._settle(self.context.now())
        return self._orders.get(request_id)

    def search(self, query: ListQuery) -> tuple[int, list[FutureOrder]]:
        """Orders of one status (``pending`` unless ``status`` is given), as documented."""
        self._settle(self.context.now())
        statuses = (query.status or PENDING,)
        matching = sorted(
            (
                order
                for order in self._orders.values()
                if order.status in statuses
                and (query.from_due is None or order.due_date >= query.from_due)
                and (query.to_due is None or order.due_date <= query.to_due)
            ),
            key=lambda order: (order.due_date, order.seq),
        )
        start = (query.page - 1) * query.limit
        return len(matching), matching[start : start + query.limit]

    def _cancel_error(
        self, index: int, value: Any, counts: Counter[str], now: datetime
    ) -> str | None:
        """Why ``request_ids.<index>`` can not be cancelled, or ``None`` if it can."""
        if not isinstance(value, str):
            return f"The request_ids.{index} field must be a string."
        if counts[value] > 1:
            return f"The request_ids.{index} field has a duplicate value."
        if len(value) != REQUEST_ID_LENGTH:
            return f"The request_ids.{index} field must be {REQUEST_ID_LENGTH} characters."
        order = self._orders.get(value)
        if order is None:
            return f"Request ID: {value} does not exist."
        if order.status not in OPEN_STATUSES:
            return f"Request ID: {value} is already processed and can not be cancelled."
        if now > order.latest_cancellation_date:
            return (
                f"Request ID: {value} can not be cancelled less than 24 hours before its due date."
            )
        return None

    def cancel(self, request_ids: list[Any]) -> None:
        """All or nothing: any invalid index rejects the whole request, unless the
        ``airalo_partial_cancel`` knob is on: then the valid ids are cancelled and the
        same 422 names only the invalid ones (what the docs leave open)."""
        now = self.context.now()
        self._settle(now)
        counts = Counter(value for value in request_ids if isinstance(value, str))
        errors = {
            f"request_ids.{index}": message
            for index, value in enumerate(request_ids)
            if (message := self._cancel_error(index, value, counts, now)) is not None
        }
        if errors and not self.context.settings.airalo_partial_cancel:
            raise invalid(errors)
        for index, request_id in enumerate(request_ids):
            if f"request_ids.{index}" in errors:
                continue
            order = self._orders[request_id]
            order.status = CANCELLED
            order.cancelled_at = now
        if errors:
            raise invalid(errors)

    def set_status(self, request_id: str, status: OrderStatus) -> FutureOrder | None:
        """Admin: move an order to any status (e.g. ``failed``/``retry``)."""
        order = self.get(request_id)
        if order is not None:
            now = self.context.now()
            order.status = status
            order.cancelled_at = now if status == CANCELLED else None
            order.processed_at = now if status == PROCESSED else None
        return order


# --------------------------------------------------------------------------- routes


def build_router(store: AiraloStore) -> APIRouter:
    """Provider routes, mounted at ``/airalo``."""

    async def authenticate(request: Request) -> None:
        store.check_token(request.headers.get("authorization"))

    async def signed_payload(request: Request) -> Any:
        """The parsed body, once its ``airalo-signature`` passed (when one is required)."""
        payload = await read_payload(request)
        store.check_signature(payload, request.headers.get(AIRALO_SIGNATURE_HEADER))
        return payload

    router = APIRouter()
    protected = APIRouter(dependencies=[Depends(authenticate)])

    @router.post("/v2/token")
    async def request_token(request: Request) -> dict[str, Any]:
        store.throttle_token_request()
        payload = await signed_payload(request)
        return success(store.issue_token(parse_credentials(payload)))

    @protected.post("/v2/future-orders")
    async def create_future_order(request: Request) -> dict[str, Any]:
        settings = store.context.settings
        payload = await signed_payload(request)
        command = parse_future_order(
            payload, store.context.now(), settings.airalo_opted_in_webhook_url
        )
        return success(store.add(command).created_json())

    @protected.get("/v2/future-orders")
    async def list_future_orders(request: Request) -> dict[str, Any]:
        query = parse_list_query(dict(request.query_params))
        total, page = store.search(query)
        meta = {
            "current_page": query.page,
            "last_page": max(1, math.ceil(total / query.limit)),
            "total": total,
        }
        return success([order.listed_json() for order in page], meta=meta)

    @protected.post("/v2/cancel-future-orders")
    async def cancel_future_orders(request: Request) -> dict[str, Any]:
        store.cancel(parse_request_ids(await signed_payload(request)))
        return success([], CANCELLED_MESSAGE)

    router.include_router(protected)
    return router


class FutureOrderSeed(BaseModel):
    """Body of ``POST /_sandbox/airalo/future-orders``: any due date, any status."""

    model_config = ConfigDict(extra="forbid")

    request_id: str | None = None
    package_id: str
    quantity: int = 1
    due_date: str
    description: str | None = None
    status: OrderStatus = PENDING
    #: Where this order's fired notification goes (else the opted-in URL).
    webhook_url: str | None = None


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: OrderStatus


def _lenient_due(value: str) -> datetime:
    """``YYYY-MM-DD HH:MM`` or any ISO 8601 date-time (naive = UTC)."""
    try:
        return parse_due(value) or as_utc(datetime.fromisoformat(value))
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=f"invalid due_date: {value!r}") from exc


def build_admin_router(store: AiraloStore) -> APIRouter:
    """Sandbox controls, mounted at ``/_sandbox/airalo``."""
    router = APIRouter()

    @router.post("/future-orders")
    async def seed_future_order(spec: FutureOrderSeed) -> dict[str, Any]:
        if spec.request_id is not None and store.contains(spec.request_id):
            raise HTTPException(status_code=409, detail=f"{spec.request_id} already exists")
        request = FutureOrderRequest(
            package_id=spec.package_id,
            quantity=spec.quantity,
            due_date=_lenient_due(spec.due_date),
            description=spec.description,
            options={"webhook_url": spec.webhook_url} if spec.webhook_url else {},
        )
        return store.add(request, request_id=spec.request_id, status=spec.status).internal_json()

    @router.post("/future-orders/{request_id}/status")
    async def set_future_order_status(request_id: str, spec: StatusChange) -> dict[str, Any]:
        """Put an order in any status, e.g. ``failed`` or ``retry`` (Airalo's own doing)."""
        order = store.set_status(request_id, spec.status)
        if order is None:
            raise HTTPException(status_code=404, detail=f"{request_id} does not exist")
        return order.internal_json()

    @router.post("/future-orders/{request_id}/fire")
    async def fire_future_order(request_id: str) -> dict[str, Any]:
        """Fire an open order now: ``processed``, and its webhook is sent."""
        try:
            order = store.fire(request_id)
        except ValueError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from exc
        if order is None:
            raise HTTPException(status_code=404, detail=f"{request_id} does not exist")
        return order.internal_json()

    @router.get("/future-orders/{request_id}")
    async def get_future_order(request_id: str) -> dict[str, Any]:
        order = store.get(request_id)
        if order is None:
            raise HTTPException(status_code=404, detail=f"{request_id} does not exist")
        return order.internal_json()

    @router.post("/revoke-tokens")
    async def revoke_tokens() -> dict[str, int]:
        """Invalidate every issued token (to exercise the client's refresh-on-401 path)."""
        return {"revoked": store.revoke_tokens()}

    return router
