"""sTN Partner API: TerminateSubscription, QueryActivation, CancelTerminateSubscription.

Subscriptions are implicit: every subscription id exists. A termination is an *Activation*
that stays ``BUSY`` until ``(wishDate or createdAt) + stn_processing_delay_seconds`` and then
settles to ``DONE`` (or ``ERROR`` when the subscription was configured to fail). Settling is
lazy: it happens whenever activations are read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.responses import JSONResponse, Response

from sandbox.clock import format_ms, parse_iso
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

BUSY, DONE, ERROR, CANCELLED = "BUSY", "DONE", "ERROR", "CANCELLED"
EXECUTED = frozenset({DONE, ERROR})

Outcome = Literal["DONE", "ERROR"]


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
                {"errorCode": item.code, "fieldName": item.field, "message": item.message}
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
        errors.append(
            FieldError(key[0].upper() + key[1:], f"'{label}' must be a string.", "InvalidFormat")
        )
        return None
    return value


def _max_length(field_name: str, label: str, value: str | None, limit: int) -> list[FieldError]:
    if value is None or len(value) <= limit:
        return []
    message = (
        f"The length of '{label}' must be {limit} characters or fewer. "
        f"You entered {len(value)} characters."
    )
    return [FieldError(field_name, message, "MaximumLength")]


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


def parse_terminate(payload: Any) -> TerminateRequest:
    body = _json_object(payload)
    errors: list[FieldError] = []
    subscription_id = _text(body, "subscriptionId", "Subscription Id", errors)
    phone = _text(body, "phoneNumber", "Phone Number", errors)
    wish_raw = _text(body, "wishDate", "Wish Date", errors)
    reference = _text(body, "referenceNumber", "Reference Number", errors)
    if subscription_id is None and phone is None and not errors:
        message = "Either 'Subscription Id' or 'Phone Number' must be provided."
        errors.append(FieldError("SubscriptionId", message, "NotEmpty"))
    if phone is not None and not PHONE_PATTERN.fullmatch(phone):
        message = "'Phone Number' must be written as 06-12345678."
        errors.append(FieldError("PhoneNumber", message, "RegularExpression"))
    wish_date = parse_iso(wish_raw, require_offset=True) if wish_raw is not None else None
    if wish_raw is not None and wish_date is None:
        message = "'Wish Date' must be an ISO 8601 date-time with a UTC offset."
        errors.append(FieldError("WishDate", message, "InvalidFormat"))
    errors += _max_length("ReferenceNumber", "Reference Number", reference, MAX_REFERENCE_LENGTH)
    if errors:
        raise validation_error(errors)
    return TerminateRequest(subscription_id, phone, wish_date, wish_raw, reference)


@dataclass(frozen=True)
class CancelRequest:
    activation_id: str
    note: str | None


def parse_cancel(payload: Any) -> CancelRequest:
    body = _json_object(payload)
    errors: list[FieldError] = []
    activation_id = _text(body, "activationId", "Activation Id", errors)
    note = _text(body, "note", "Note", errors)
    if activation_id is None and not errors:
        message = "'Activation Id' must not be empty."
        errors.append(FieldError("ActivationId", message, "NotEmpty"))
    errors += _max_length("Note", "Note", note, MAX_NOTE_LENGTH)
    if errors:
        raise validation_error(errors)
    assert activation_id is not None
    return CancelRequest(activation_id, note)


@dataclass(frozen=True)
class ActivationQuery:
    id: str | None = None
    status: str | None = None
    activation_type: str | None = None
    subscription_id: str | None = None
    phone_number: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    take: int = DEFAULT_TAKE
    skip: int = 0
    descending: bool = False


def _non_negative_int(raw: str | None, name: str, default: int, errors: list[FieldError]) -> int:
    if raw is None or raw == "":
        return default
    if raw.isdigit():
        return int(raw)
    errors.append(FieldError(name, f"'{name}' must be a non-negative integer.", "InvalidFormat"))
    return default


def _query_datetime(raw: str | None, name: str, errors: list[FieldError]) -> datetime | None:
    if raw is None or raw == "":
        return None
    parsed = parse_iso(raw)
    if parsed is None:
        errors.append(FieldError(name, f"'{name}' must be an ISO 8601 date-time.", "InvalidFormat"))
    return parsed


def parse_query(params: dict[str, str]) -> ActivationQuery:
    errors: list[FieldError] = []
    phone_raw = params.get("phoneNumber") or None
    phone = normalize_phone(phone_raw) if phone_raw else None
    if phone_raw and phone is None:
        message = "'Phone Number' must be written as 06-12345678 or 0612345678."
        errors.append(FieldError("PhoneNumber", message, "RegularExpression"))
    order_by = params.get("orderBy") or "createdAt"
    if order_by not in ("createdAt", "-createdAt"):
        message = "'OrderBy' must be 'createdAt' or '-createdAt'."
        errors.append(FieldError("OrderBy", message, "InvalidValue"))
    query = ActivationQuery(
        id=params.get("id") or None,
        status=params.get("status") or None,
        activation_type=params.get("activationType") or None,
        subscription_id=params.get("subscriptionId") or None,
        phone_number=phone,
        created_from=_query_datetime(params.get("createdAtFrom"), "CreatedAtFrom", errors),
        created_to=_query_datetime(params.get("createdAtTo"), "CreatedAtTo", errors),
        take=_non_negative_int(params.get("take"), "Take", DEFAULT_TAKE, errors),
        skip=_non_negative_int(params.get("skip"), "Skip", 0, errors),
        descending=order_by == "-createdAt",
    )
    if errors:
        raise validation_error(errors)
    return query


# --------------------------------------------------------------------------- state


@dataclass
class Activation:
    id: str
    seq: int
    created_at: datetime
    modified_at: datetime
    subscription_id: str
    phone_number: str | None
    #: ``wishDate`` if given, else ``createdAt``; processing ends a delay after it.
    scheduled_at: datetime
    info: dict[str, str] = field(default_factory=dict)
    status: str = BUSY
    activated_date: datetime | None = None

    def matches(self, query: ActivationQuery) -> bool:
        checks = (
            query.id in (None, self.id),
            query.status is None or query.status.upper() == self.status,
            query.activation_type is None or query.activation_type.upper() == ACTIVATION_TYPE,
            query.subscription_id in (None, self.subscription_id),
            query.phone_number in (None, self.phone_number),
            query.created_from is None or self.created_at >= query.created_from,
            query.created_to is None or self.created_at <= query.created_to,
        )
        return all(checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "createdAt": format_ms(self.created_at),
            "modifiedAt": format_ms(self.modified_at),
            "status": self.status,
            "activationType": ACTIVATION_TYPE,
            "providerEnvironment": PROVIDER_ENVIRONMENT,
            "subscriptionId": self.subscription_id,
            "phoneNumber": self.phone_number,
            "activatedDate": format_ms(self.activated_date) if self.activated_date else None,
            "info": dict(self.info),
        }


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


class StnStore:
    """Activations and per-subscription outcome configuration."""

    def __init__(self, context: SandboxContext) -> None:
        self.context = context
        self.reset()

    def reset(self) -> None:
        self._activations: dict[str, Activation] = {}
        self._phone_to_subscription: dict[str, str] = {}
        self._outcomes: dict[str, ConfiguredOutcome] = {}

    def set_outcome(self, subscription_id: str, outcome: Outcome, message: str) -> None:
        self._outcomes[subscription_id] = ConfiguredOutcome(outcome, message)

    def snapshot(self) -> StnState:
        """The live state (shares the activation objects: serialise it right away)."""
        return StnState(
            activations=list(self._activations.values()),
            phone_links=dict(self._phone_to_subscription),
            outcomes=dict(self._outcomes),
        )

    def restore(self, state: StnState) -> None:
        self._activations = {activation.id: activation for activation in state.activations}
        self._phone_to_subscription = dict(state.phone_links)
        self._outcomes = dict(state.outcomes)

    # ----------------------------------------------------------------- lifecycle

    def _settle(self, now: datetime) -> None:
        """Move every BUSY activation whose processing time has passed to DONE or ERROR."""
        delay = timedelta(seconds=self.context.settings.stn_processing_delay_seconds)
        for activation in self._activations.values():
            due = max(activation.scheduled_at + delay, activation.created_at)
            if activation.status != BUSY or now < due:
                continue
            outcome = self._outcomes.get(activation.subscription_id)
            activation.modified_at = due
            if outcome is not None and outcome.outcome == ERROR:
                activation.status = ERROR
                activation.info["errorMessage"] = outcome.message
            else:
                activation.status = DONE
                activation.activated_date = due

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
        for activation in self._activations.values():
            if activation.subscription_id != subscription_id:
                continue
            if activation.status == DONE:
                message = f"Subscription {subscription_id} has already been terminated."
                raise business_error("SubscriptionTerminated", message)
            if activation.status == BUSY:
                message = (
                    f"Subscription {subscription_id} already has a pending termination "
                    f"(activation {activation.id})."
                )
                raise business_error("TerminationPending", message)

    # ----------------------------------------------------------------- operations

    def terminate(self, request: TerminateRequest) -> Activation:
        now = self.context.now()
        self._settle(now)
        subscription_id, phone = self._resolve_subscription(request)
        self._check_terminable(subscription_id)
        info: dict[str, str] = {}
        if request.wish_date_raw is not None:
            info["wishDate"] = request.wish_date_raw
        if request.reference_number is not None:
            info["referenceNumber"] = request.reference_number
        activation = Activation(
            id=self._new_id(),
            seq=len(self._activations),
            created_at=now,
            modified_at=now,
            subscription_id=subscription_id,
            phone_number=phone,
            scheduled_at=request.wish_date or now,
            info=info,
        )
        self._activations[activation.id] = activation
        return activation

    def query(self, query: ActivationQuery) -> tuple[int, list[Activation]]:
        """``(total matching, requested page)``."""
        self._settle(self.context.now())
        matching = sorted(
            (activation for activation in self._activations.values() if activation.matches(query)),
            key=lambda activation: (activation.created_at, activation.seq),
            reverse=query.descending,
        )
        return len(matching), matching[query.skip : query.skip + query.take]

    def cancel(self, request: CancelRequest) -> Activation:
        now = self.context.now()
        self._settle(now)
        activation = self._activations.get(request.activation_id)
        if activation is None:
            message = f"Activation {request.activation_id} not found."
            raise business_error("NotFound", message, status=404)
        if activation.status in EXECUTED:
            message = (
                f"Activation {activation.id} has already been executed and can not be cancelled."
            )
            raise business_error("AlreadyExecuted", message)
        if activation.status == CANCELLED:
            message = f"Activation {activation.id} has already been cancelled."
            raise business_error("AlreadyCancelled", message)
        activation.status = CANCELLED
        activation.modified_at = now
        if request.note is not None:
            activation.info["cancelNote"] = request.note
        return activation

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
    outcome: Outcome
    message: str = "Termination rejected by the network operator."


def build_admin_router(store: StnStore) -> APIRouter:
    """Sandbox controls, mounted at ``/_sandbox/stn``."""
    router = APIRouter()

    @router.post("/subscriptions/{subscription_id}")
    async def set_outcome(subscription_id: str, spec: OutcomeSpec) -> dict[str, Any]:
        """How terminations of this subscription settle (now or later)."""
        store.set_outcome(subscription_id, spec.outcome, spec.message)
        return {"subscriptionId": subscription_id, "outcome": spec.outcome, "message": spec.message}

    return router
