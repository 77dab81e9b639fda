"""sTN Partner API: TerminateSubscription, QueryActivation, CancelTerminateSubscription.

Subscriptions are implicit: every subscription id exists. A termination is an *Activation*
that stays ``BUSY`` until ``(wishDate or createdAt) + stn_processing_delay_seconds`` and then
settles to ``DONE`` (or ``ERROR`` when the subscription was configured to fail).

A cancellation is asynchronous, as documented: CancelTerminateSubscription answers a *new*
Activation (own id, ``activationType: TERMINATE``, the termination's ``referenceNumber``)
that is ``BUSY`` for ``stn_cancellation_delay_seconds`` and then ``DONE`` (the termination
will not execute) or ``ERROR`` (configured per subscription: the termination stands).
Meanwhile the termination is ``CANCELLING`` and does not execute. Settling is lazy: it
happens whenever activations are read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from sandbox.clock import as_utc, format_ms, parse_iso
from sandbox.common import SandboxContext, random_id, read_payload
from sandbox.errors import (
    FieldError,
    ProviderError,
    ProviderProfile,
    retry_after_header,
    status_code_name,
)

API_KEY_HEADER = "stn-api-key"
PROVIDER_ENVIRONMENT = "SP16001"
ACTIVATION_TYPE = "TERMINATE"
PHONE_PATTERN = re.compile(r"^06-\d{8}$")
PLAIN_PHONE_PATTERN = re.compile(r"^06\d{8}$")
MAX_REFERENCE_LENGTH = 15
MAX_NOTE_LENGTH = 164
DEFAULT_TAKE = 100

BUSY, CANCELLING, DONE, ERROR = "BUSY", "CANCELLING", "DONE", "ERROR"
FINAL = frozenset({DONE, ERROR})
CANCELLED_MESSAGE = "Termination cancelled by activation {id}."
CANCEL_FAILED_MESSAGE = "The termination could not be cancelled."

Outcome = Literal["DONE", "ERROR"]
Kind = Literal["termination", "cancellation"]
TERMINATION: Final = "termination"
CANCELLATION: Final = "cancellation"


# --------------------------------------------------------------------------- errors


def render_error(error: ProviderError, _path: str) -> Response:
    """ServiceStack ``responseStatus`` body; the top-level code defaults to the first field's."""
    first = error.fields[0] if error.fields else None
    code = error.code or (first.code if first else status_code_name(error.status))
    body = {
        "responseStatus": {
            "errorCode": code,
            "message": error.message,
            "errors": [
                {
                    "errorCode": item.code,
                    "fieldName": item.field,
                    "message": item.message,
                    **({"meta": dict(item.meta)} if item.meta else {}),
                }
                for item in error.fields
            ],
        }
    }
    return JSONResponse(body, status_code=error.status, headers=error.headers)


PROFILE = ProviderProfile(
    name="stn",
    render=render_error,
    retry_headers=retry_after_header,
    rate_limit_message="Too many requests, please retry later.",
)


def validation_error(fields: list[FieldError]) -> ProviderError:
    return ProviderError(status=400, message=fields[0].message, code=fields[0].code, fields=fields)


def business_error(code: str, message: str, status: int = 400) -> ProviderError:
    return ProviderError(status=status, message=message, code=code)


# --------------------------------------------------------------------------- validation


def normalize_phone(value: str) -> str | None:
    """``06-12345678`` for either ``06-12345678`` or ``0612345678``; else ``None``."""
    if PHONE_PATTERN.fullmatch(value):
        return value
    if PLAIN_PHONE_PATTERN.fullmatch(value):
        return f"{value[:2]}-{value[2:]}"
    return None


def _text(body: dict[str, Any], key: str, label: str, errors: list[FieldError]) -> str | None:
    """An optional string field; empty strings count as absent (as ServiceStack binds them)."""
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        errors.append(FieldError(key, f"'{label}' must be a string.", "InvalidFormat"))
        return None
    return value


def _max_length(field_name: str, label: str, value: str | None, limit: int) -> list[FieldError]:
    if value is None or len(value) <= limit:
        return []
    message = (
        f"The length of '{label}' must be {limit} characters or fewer. "
        f"You entered {len(value)} characters."
    )
    meta = {
        "MinLength": "0",
        "MaxLength": str(limit),
        "TotalLength": str(len(value)),
        "PropertyName": label,
        "PropertyValue": value,
    }
    return [FieldError(field_name, message, "MaximumLength", meta)]


def _json_object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise business_error("SerializationException", "The request body must be a JSON object.")
    return body


@dataclass(frozen=True)
class TerminateRequest:
    subscription_id: str | None
    phone_number: str | None
    wish_date: datetime | None
    wish_date_raw: str | None
    reference_number: str | None


def wish_date_out_of_range() -> FieldError:
    """A wish date sTN cannot schedule (its processing time would lie past year 9999).

    sTN documents no upper bound; a real provider refuses what it cannot store with a
    field error rather than failing, so the sandbox does too (400, ServiceStack's shape).
    Refused rather than clamped: a clamped date would be a schedule nobody asked for.
    """
    return FieldError("wishDate", "'wish Date' is out of range.", "InclusiveBetween")


def later(moment: datetime, delay: timedelta) -> datetime | None:
    """``moment + delay``, or None when that lies past the last representable moment
    (the end of year 9999): a time that never comes."""
    try:
        return moment + delay
    except OverflowError:
        return None


def parse_terminate(payload: Any) -> TerminateRequest:
    body = _json_object(payload)
    errors: list[FieldError] = []
    subscription_id = _text(body, "subscriptionId", "subscription Id", errors)
    phone = _text(body, "phoneNumber", "phone Number", errors)
    wish_raw = _text(body, "wishDate", "wish Date", errors)
    reference = _text(body, "referenceNumber", "reference Number", errors)
    if subscription_id is None and phone is None and not errors:
        message = "Either 'subscription Id' or 'phone Number' must be provided."
        errors.append(FieldError("subscriptionId", message, "NotEmpty"))
    if phone is not None and not PHONE_PATTERN.fullmatch(phone):
        message = "'phone Number' must be written as 06-12345678."
        errors.append(FieldError("phoneNumber", message, "RegularExpression"))
    wish_date = None
    if wish_raw is not None:
        try:
            wish_date = parse_iso(wish_raw, require_offset=True)
        except OverflowError:  # well-formed, but its UTC instant is outside years 1-9999
            errors.append(wish_date_out_of_range())
        else:
            if wish_date is None:
                message = "'wish Date' must be an ISO 8601 date-time with a UTC offset."
                errors.append(FieldError("wishDate", message, "InvalidFormat"))
    errors += _max_length("referenceNumber", "reference Number", reference, MAX_REFERENCE_LENGTH)
    if errors:
        raise validation_error(errors)
    return TerminateRequest(subscription_id, phone, wish_date, wish_raw, reference)


MISSING_ACTIVATION_ID = (
    "Could not deserialize 'application/json' request using "
    "STNPartnerAPIServiceStack.ServiceModel.CancelTerminateSubscription'\n"
    "Error: JSON deserialization for type "
    "'STNPartnerAPIServiceStack.ServiceModel.CancelTerminateSubscription' was missing "
    "required properties, including the following: activationId"
)


@dataclass(frozen=True)
class CancelRequest:
    activation_id: str
    note: str | None


def parse_cancel(payload: Any) -> CancelRequest:
    body = _json_object(payload)
    errors: list[FieldError] = []
    activation_id = _text(body, "activationId", "activation Id", errors)
    note = _text(body, "note", "note", errors)
    if activation_id is None and not errors:
        # The documented example (Error Handling) for exactly this request.
        raise business_error("SerializationException", MISSING_ACTIVATION_ID)
    errors += _max_length("note", "note", note, MAX_NOTE_LENGTH)
    if errors:
        raise validation_error(errors)
    assert activation_id is not None
    return CancelRequest(activation_id, note)


#: Activation fields QueryActivation can sort on (``orderBy``/``orderByDesc``, any case).
SORT_FIELDS = {
    name.lower(): name
    for name in (
        "id",
        "createdAt",
        "modifiedAt",
        "status",
        "activationType",
        "referenceNumber",
        "subscriptionId",
        "phoneNumber",
        "activatedDate",
    )
}


@dataclass(frozen=True)
class ActivationQuery:
    id: str | None = None
    status: str | None = None
    activation_type: str | None = None
    reference_number: str | None = None
    subscription_id: str | None = None
    phone_number: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    take: int = DEFAULT_TAKE
    skip: int = 0
    #: ``(field, descending)`` in priority order; ``createdAt`` ascending by default.
    order: tuple[tuple[str, bool], ...] = (("createdAt", False),)


def _non_negative_int(raw: str | None, name: str, default: int, errors: list[FieldError]) -> int:
    if raw is None or raw == "":
        return default
    if raw.isdigit():
        return int(raw)
    errors.append(FieldError(name, f"'{name}' must be a non-negative integer.", "InvalidFormat"))
    return default


def _query_datetime(
    raw: str | None, name: str, end_of_day: bool, errors: list[FieldError]
) -> datetime | None:
    """ISO 8601 date-time, or a date ``YYYY-MM-DD`` as documented (a whole day, inclusive)."""
    if raw is None or raw == "":
        return None
    try:
        parsed = parse_iso(raw)
    except OverflowError:  # well-formed, but its UTC instant is outside years 1-9999
        errors.append(FieldError(name, f"'{name}' is out of range.", "InclusiveBetween"))
        return None
    if parsed is None:
        try:
            day = as_utc(datetime.strptime(raw, "%Y-%m-%d"))
        except ValueError:
            message = f"'{name}' must be an ISO 8601 date or date-time."
            errors.append(FieldError(name, message, "InvalidFormat"))
            return None
        return day + timedelta(days=1, milliseconds=-1) if end_of_day else day
    return parsed


def _sort_fields(
    raw: str | None, descending: bool, errors: list[FieldError]
) -> list[tuple[str, bool]]:
    """AutoQuery sorting: comma-separated fields; ``-field`` in ``orderBy`` is descending."""
    fields: list[tuple[str, bool]] = []
    for part in (raw or "").split(","):
        name = part.strip()
        if not name:
            continue
        flip = name.startswith("-")
        known = SORT_FIELDS.get(name.lstrip("-").lower())
        if known is None:
            label = "OrderByDesc" if descending else "OrderBy"
            errors.append(
                FieldError(label, f"'{label}' has an unknown field: {name}.", "InvalidValue")
            )
            continue
        fields.append((known, descending != flip))
    return fields


def parse_query(params: dict[str, str]) -> ActivationQuery:
    errors: list[FieldError] = []
    phone_raw = params.get("phoneNumber") or None
    phone = normalize_phone(phone_raw) if phone_raw else None
    if phone_raw and phone is None:
        message = "'phone Number' must be written as 06-12345678 or 0612345678."
        errors.append(FieldError("PhoneNumber", message, "RegularExpression"))
    order = _sort_fields(params.get("orderBy"), False, errors)
    order += _sort_fields(params.get("orderByDesc"), True, errors)
    query = ActivationQuery(
        id=params.get("id") or None,
        status=params.get("status") or None,
        activation_type=params.get("activationType") or None,
        reference_number=params.get("referenceNumber") or None,
        subscription_id=params.get("subscriptionId") or None,
        phone_number=phone,
        created_from=_query_datetime(params.get("createdAtFrom"), "CreatedAtFrom", False, errors),
        created_to=_query_datetime(params.get("createdAtTo"), "CreatedAtTo", True, errors),
        take=_non_negative_int(params.get("take"), "Take", DEFAULT_TAKE, errors),
        skip=_non_negative_int(params.get("skip"), "Skip", 0, errors),
        order=tuple(order) or (("createdAt", False),),
    )
    if errors:
        raise validation_error(errors)
    return query


# --------------------------------------------------------------------------- state


@dataclass
class Activation:
    """A termination, or a cancellation of one (``kind``/``target_id`` are sandbox-only)."""

    id: str
    seq: int
    created_at: datetime
    modified_at: datetime
    subscription_id: str
    phone_number: str | None
    #: Termination: ``wishDate`` if given, else ``createdAt``; processing ends a delay after
    #: it. Cancellation: its creation; it settles ``stn_cancellation_delay_seconds`` later.
    scheduled_at: datetime
    info: dict[str, str] = field(default_factory=dict)
    status: str = BUSY
    activated_date: datetime | None = None
    reference_number: str | None = None
    kind: Kind = TERMINATION
    #: For a cancellation: the termination it cancels.
    target_id: str | None = None

    def matches(self, query: ActivationQuery) -> bool:
        checks = (
            query.id in (None, self.id),
            query.status is None or query.status.upper() == self.status,
            query.activation_type is None or query.activation_type.upper() == ACTIVATION_TYPE,
            query.reference_number in (None, self.reference_number),
            query.subscription_id in (None, self.subscription_id),
            query.phone_number in (None, self.phone_number),
            query.created_from is None or self.created_at >= query.created_from,
            query.created_to is None or self.created_at <= query.created_to,
        )
        return all(checks)

    def to_json(self) -> dict[str, Any]:
        """The documented Activation; optional fields only when they have a value."""
        body: dict[str, Any] = {
            "id": self.id,
            "createdAt": format_ms(self.created_at),
            "modifiedAt": format_ms(self.modified_at),
            "status": self.status,
            "activationType": ACTIVATION_TYPE,
            "providerEnvironment": PROVIDER_ENVIRONMENT,
        }
        if self.reference_number is not None:
            body["referenceNumber"] = self.reference_number
        body["subscriptionId"] = self.subscription_id
        if self.phone_number is not None:
            body["phoneNumber"] = self.phone_number
        if self.activated_date is not None:
            body["activatedDate"] = format_ms(self.activated_date)
        body["info"] = dict(self.info)
        return body

    def sort_value(self, name: str) -> tuple[bool, Any]:
        """``(present, value)``: absent values sort first (as SQL NULLs do ascending)."""
        value = self.to_json().get(name)
        if name in ("createdAt", "modifiedAt", "activatedDate"):
            value = {"createdAt": self.created_at, "modifiedAt": self.modified_at}.get(
                name, self.activated_date
            )
        return (value is not None, value if value is not None else "")


@dataclass(frozen=True)
class ConfiguredOutcome:
    outcome: Outcome
    message: str


@dataclass
class StnState:
    """The part of :class:`StnStore` that ``--state-file`` keeps across restarts."""

    activations: list[Activation]
    phone_links: dict[str, str]
    outcomes: dict[str, ConfiguredOutcome]
    cancel_outcomes: dict[str, ConfiguredOutcome] = field(default_factory=dict)


class StnStore:
    """Activations and per-subscription outcome configuration."""

    def __init__(self, context: SandboxContext) -> None:
        self.context = context
        self.reset()

    def reset(self) -> None:
        self._activations: dict[str, Activation] = {}
        self._phone_to_subscription: dict[str, str] = {}
        self._outcomes: dict[str, ConfiguredOutcome] = {}
        self._cancel_outcomes: dict[str, ConfiguredOutcome] = {}

    def set_outcome(self, subscription_id: str, outcome: Outcome, message: str) -> None:
        """How this subscription's terminations settle."""
        self._outcomes[subscription_id] = ConfiguredOutcome(outcome, message)

    def set_cancel_outcome(self, subscription_id: str, outcome: Outcome, message: str) -> None:
        """How cancellations of this subscription's terminations settle."""
        self._cancel_outcomes[subscription_id] = ConfiguredOutcome(outcome, message)

    def snapshot(self) -> StnState:
        """The live state (shares the activation objects: serialise it right away)."""
        return StnState(
            activations=list(self._activations.values()),
            phone_links=dict(self._phone_to_subscription),
            outcomes=dict(self._outcomes),
            cancel_outcomes=dict(self._cancel_outcomes),
        )

    def restore(self, state: StnState) -> None:
        self._activations = {activation.id: activation for activation in state.activations}
        self._phone_to_subscription = dict(state.phone_links)
        self._outcomes = dict(state.outcomes)
        self._cancel_outcomes = dict(state.cancel_outcomes)

    # ----------------------------------------------------------------- lifecycle

    def _settle(self, now: datetime) -> None:
        """Settle what is due: cancellations first (they hold their termination), then
        terminations whose processing time has passed."""
        settings = self.context.settings
        cancel_delay = timedelta(seconds=settings.stn_cancellation_delay_seconds)
        # A due time past year 9999 (``later`` is None) never comes: a date the store
        # took before the delay grew must not make every request fail (issue #10).
        for cancellation in self._by_kind(CANCELLATION):
            cancel_due = later(cancellation.scheduled_at, cancel_delay)
            if cancellation.status == BUSY and cancel_due is not None and now >= cancel_due:
                self._settle_cancellation(cancellation, cancel_due)
        delay = timedelta(seconds=settings.stn_processing_delay_seconds)
        for termination in self._by_kind(TERMINATION):
            processed = later(termination.scheduled_at, delay)
            if termination.status != BUSY or processed is None:
                continue
            due = max(processed, termination.created_at)
            if now < due:
                continue
            outcome = self._outcomes.get(termination.subscription_id)
            # Held while CANCELLING: a termination whose cancellation failed late
            # settles at the moment it was released.
            due = max(due, termination.modified_at)
            termination.modified_at = due
            if outcome is not None and outcome.outcome == ERROR:
                termination.status = ERROR
                termination.info["errorMessage"] = outcome.message
            else:
                termination.status = DONE
                termination.activated_date = due

    def _settle_cancellation(self, cancellation: Activation, due: datetime) -> None:
        termination = self._activations[cancellation.target_id or ""]
        outcome = self._cancel_outcomes.get(cancellation.subscription_id)
        cancellation.modified_at = due
        termination.modified_at = due
        if outcome is not None and outcome.outcome == ERROR:
            cancellation.status = ERROR
            cancellation.info["errorMessage"] = outcome.message
            termination.status = BUSY  # released: it executes at its time after all
        else:
            cancellation.status = DONE
            cancellation.activated_date = due
            termination.status = ERROR
            termination.info["errorMessage"] = CANCELLED_MESSAGE.format(id=cancellation.id)

    def _by_kind(self, kind: Kind) -> list[Activation]:
        return [activation for activation in self._activations.values() if activation.kind == kind]

    def _resolve_subscription(self, request: TerminateRequest) -> tuple[str, str | None]:
        """Subscription id and phone number of a request; links the two when both are given."""
        phone = request.phone_number
        if request.subscription_id is not None:
            subscription_id = request.subscription_id
            if phone is not None:
                self._phone_to_subscription[phone] = subscription_id
            else:
                phone = self._phone_of(subscription_id)
            return subscription_id, phone
        assert phone is not None
        derived = "SUB" + phone.replace("-", "")
        return self._phone_to_subscription.setdefault(phone, derived), phone

    def _phone_of(self, subscription_id: str) -> str | None:
        for phone, linked in self._phone_to_subscription.items():
            if linked == subscription_id:
                return phone
        return None

    def _check_terminable(self, subscription_id: str) -> None:
        for activation in self._by_kind(TERMINATION):
            if activation.subscription_id != subscription_id:
                continue
            if activation.status == DONE:
                message = f"Subscription {subscription_id} has already been terminated."
                raise business_error("SubscriptionTerminated", message)
            if activation.status in (BUSY, CANCELLING):
                message = (
                    f"Subscription {subscription_id} already has a pending termination "
                    f"(activation {activation.id})."
                )
                raise business_error("TerminationPending", message)

    # ----------------------------------------------------------------- operations

    def terminate(self, request: TerminateRequest) -> Activation:
        now = self.context.now()
        self._settle(now)
        delay = timedelta(seconds=self.context.settings.stn_processing_delay_seconds)
        if request.wish_date is not None and later(request.wish_date, delay) is None:
            raise validation_error([wish_date_out_of_range()])
        subscription_id, phone = self._resolve_subscription(request)
        self._check_terminable(subscription_id)
        info: dict[str, str] = {}
        if request.wish_date_raw is not None:
            info["wishDate"] = request.wish_date_raw
        activation = Activation(
            id=self._new_id(),
            seq=len(self._activations),
            created_at=now,
            modified_at=now,
            subscription_id=subscription_id,
            phone_number=phone,
            scheduled_at=request.wish_date or now,
            info=info,
            reference_number=request.reference_number,
        )
        self._activations[activation.id] = activation
        return activation

    def query(self, query: ActivationQuery) -> tuple[int, list[Activation]]:
        """``(total matching, requested page)``."""
        self._settle(self.context.now())
        matching = sorted(
            (activation for activation in self._activations.values() if activation.matches(query)),
            key=lambda activation: activation.seq,
        )
        for name, descending in reversed(query.order):  # stable sorts: last key first
            matching.sort(key=lambda activation: activation.sort_value(name), reverse=descending)
        return len(matching), matching[query.skip : query.skip + query.take]

    def cancel(self, request: CancelRequest) -> Activation:
        """Start cancelling a BUSY termination: a new BUSY activation, the termination
        ``CANCELLING`` until that one settles."""
        now = self.context.now()
        self._settle(now)
        termination = self._activations.get(request.activation_id)
        if termination is None or termination.kind != TERMINATION:
            message = f"Activation {request.activation_id} not found."
            raise business_error("NotFound", message, status=404)
        if termination.status == CANCELLING:
            message = f"Activation {termination.id} is already being cancelled."
            raise business_error("CancellationPending", message)
        if termination.status in FINAL:
            message = (
                f"Activation {termination.id} has already been executed and can not be cancelled."
            )
            raise business_error("AlreadyExecuted", message)
        info = {key: value for key, value in termination.info.items() if key == "wishDate"}
        cancellation = Activation(
            id=self._new_id(),
            seq=len(self._activations),
            created_at=now,
            modified_at=now,
            subscription_id=termination.subscription_id,
            phone_number=termination.phone_number,
            scheduled_at=now,
            info=info,
            reference_number=termination.reference_number,
            kind=CANCELLATION,
            target_id=termination.id,
        )
        self._activations[cancellation.id] = cancellation
        termination.status = CANCELLING
        termination.modified_at = now
        return cancellation

    def _new_id(self) -> str:
        while (candidate := random_id(16)) in self._activations:
            pass
        return candidate


# --------------------------------------------------------------------------- routes


def build_router(store: StnStore) -> APIRouter:
    """Provider routes, mounted at ``/stn``."""

    async def authenticate(request: Request) -> None:
        if request.headers.get(API_KEY_HEADER) != store.context.settings.stn_api_key:
            raise business_error("Unauthorized", "Invalid or missing stn-api-key", status=401)

    router = APIRouter(dependencies=[Depends(authenticate)])

    @router.post("/api/TerminateSubscription")
    async def terminate_subscription(request: Request) -> dict[str, Any]:
        command = parse_terminate(await read_payload(request))
        return store.terminate(command).to_json()

    @router.get("/api/QueryActivation")
    async def query_activation(request: Request) -> dict[str, Any]:
        query = parse_query(dict(request.query_params))
        total, page = store.query(query)
        results = [activation.to_json() for activation in page]
        return {"offset": query.skip, "total": total, "results": results, "meta": {}}

    @router.post("/api/CancelTerminateSubscription")
    async def cancel_terminate_subscription(request: Request) -> dict[str, Any]:
        command = parse_cancel(await read_payload(request))
        return store.cancel(command).to_json()

    return router


class OutcomeSpec(BaseModel):
    """Body of ``POST /_sandbox/stn/subscriptions/{id}`` (camelCase or snake_case)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    outcome: Outcome | None = None
    message: str = "Termination rejected by the network operator."
    cancel_outcome: Outcome | None = Field(default=None, alias="cancelOutcome")
    cancel_message: str = Field(default=CANCEL_FAILED_MESSAGE, alias="cancelMessage")


def build_admin_router(store: StnStore) -> APIRouter:
    """Sandbox controls, mounted at ``/_sandbox/stn``."""
    router = APIRouter()

    @router.post("/subscriptions/{subscription_id}")
    async def set_outcome(subscription_id: str, spec: OutcomeSpec) -> dict[str, Any]:
        """How this subscription's terminations (``outcome``) and cancellations
        (``cancelOutcome``) settle, for activations that are still BUSY."""
        answer: dict[str, Any] = {"subscriptionId": subscription_id}
        if spec.outcome is not None:
            store.set_outcome(subscription_id, spec.outcome, spec.message)
            answer |= {"outcome": spec.outcome, "message": spec.message}
        if spec.cancel_outcome is not None:
            store.set_cancel_outcome(subscription_id, spec.cancel_outcome, spec.cancel_message)
            answer |= {"cancelOutcome": spec.cancel_outcome, "cancelMessage": spec.cancel_message}
        return answer

    return router
