"""sTN line termination: the request, its rules, the provider's Activation.

Facts: ``shared/docs/provider-contracts.md`` §3 and seed 003.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator

from domain.common import (
    CamelModel,
    FieldProblem,
    InvalidRequest,
    SagaPhase,
    StepRecord,
    check_schedule,
    clean_identifier,
    clean_text,
    fit_to_limit,
    problems_from_validation_error,
    schedule_problems,
)
from domain.outcomes import Jeopardy

REFERENCE_MAX_LENGTH = 15
NOTE_MAX_LENGTH = 164
ACTIVATION_TYPE_TERMINATE = "TERMINATE"


class ActivationStatus(StrEnum):
    """The statuses sTN documents for an Activation; nothing else is assumed.

    ``DONE``/``ERROR`` are final. ``INIT``, ``BUSY`` and ``CANCELLING`` (documented
    for an activation whose cancellation is being processed) are in progress, and
    so is any status sTN may add later.
    """

    INIT = "INIT"
    BUSY = "BUSY"
    CANCELLING = "CANCELLING"
    DONE = "DONE"
    ERROR = "ERROR"


FINAL_STATUSES = frozenset({ActivationStatus.DONE, ActivationStatus.ERROR})
# Kept for callers that import it: a termination in a final status can no
# longer be cancelled.
EXECUTED_STATUSES = FINAL_STATUSES

_PHONE = re.compile(r"^(?:\+31|0031|0)6-?([0-9]{8})$")  # ASCII digits only, after NFKC


class StnActivity(StrEnum):
    """Activity names: the workflow calls them by name and so never imports httpx."""

    SUBMIT_TERMINATION = "stn.submit_termination"
    AWAIT_ACTIVATION_FINAL = "stn.await_activation_final"
    CANCEL_TERMINATION = "stn.cancel_termination"
    GET_ACTIVATION = "stn.get_activation"


def normalize_phone_number(raw: str) -> str:
    """Return a Dutch mobile number in sTN's documented form ``06-12345678``.

    Accepts ``0612345678``, ``06-12345678``, ``+31612345678`` and ``0031612345678``
    with spaces anywhere.
    """
    match = _PHONE.match(re.sub(r"\s+", "", clean_text(raw)))
    if not match:
        raise ValueError("must be a Dutch mobile number like 0612345678 or 06-12345678")
    return f"06-{match.group(1)}"


def mask_phone_number(phone: str | None) -> str | None:
    """Keep the last four digits only: phone numbers are PII."""
    if phone is None:
        return None
    return f"06-****{phone[-4:]}"


class TerminationRequest(CamelModel):
    """What a caller asks for: terminate one mobile line, now or at ``wishDate``.

    Validation here is time-free on purpose: the workflow deserialises this
    model again on every replay, weeks later, when a wish date is long past.
    The "not in the past" rule lives in :func:`check_termination_request`,
    applied at the edge with the edge's clock.
    """

    subscription_id: str | None = Field(default=None, min_length=1, max_length=64)
    phone_number: str | None = None
    wish_date: datetime | None = None
    reference_number: str | None = Field(
        default=None, min_length=1, max_length=REFERENCE_MAX_LENGTH
    )
    customer_id: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("subscription_id", "reference_number", "customer_id")
    @classmethod
    def _clean_ids(cls, value: str | None) -> str | None:
        return clean_identifier(value)

    @field_validator("phone_number")
    @classmethod
    def _normalize_phone(cls, value: str | None) -> str | None:
        return None if value is None else normalize_phone_number(value)

    @field_validator("wish_date")
    @classmethod
    def _require_offset(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must be ISO 8601 with a UTC offset, e.g. 2026-12-01T00:00:00+01:00")
        return value

    @model_validator(mode="after")
    def _require_identifier(self) -> TerminationRequest:
        if self.subscription_id is None and self.phone_number is None:
            raise ValueError("give subscriptionId or phoneNumber (at least one)")
        return self

    def summary(self) -> str:
        """One line for the Temporal UI; no phone number in clear."""
        line = self.subscription_id or mask_phone_number(self.phone_number)
        when = self.wish_date.isoformat() if self.wish_date else "as soon as possible"
        customer = f" for customer {self.customer_id}" if self.customer_id else ""
        return f"Terminate sTN line {line} at {when}{customer}"


def check_termination_request(request: TerminationRequest, now: datetime) -> None:
    """The rules that depend on the clock, checked once, at the edge."""
    check_schedule("wishDate", request.wish_date, now)


def parse_termination_request(data: Mapping[str, Any], now: datetime | None) -> TerminationRequest:
    """Validate a caller's request completely, reporting every problem at once.

    ``now`` is the edge's clock for the date rules (:func:`schedule_problems`);
    ``None`` skips them, to read a request accepted earlier (a redelivery).
    """
    try:
        request = TerminationRequest.model_validate(data)
    except ValidationError as error:
        problems = problems_from_validation_error(error)
        raise InvalidRequest(
            problems + schedule_problems("wishDate", data.get("wishDate"), now)
        ) from None
    if now is not None:
        check_termination_request(request, now)
    return request


def check_future_wish_date(wish_date: datetime, now: datetime, field: str = "wishDate") -> None:
    """Reschedule rule: a new date needs an offset and must lie ahead, not too far."""
    if wish_date.tzinfo is None:
        raise InvalidRequest([FieldProblem(field=field, rule="must carry a UTC offset")])
    check_schedule(field, wish_date, now)


def termination_workflow_id(request: TerminationRequest, key: bytes) -> str:
    """The business key: one saga per line, so duplicate requests collapse.

    A subscription id is used as it is. A phone number is PII and a workflow id
    is visible everywhere, so it is replaced by a keyed hash (``key`` is a
    deployment secret; plain SHA-256 of an 8-digit number is trivially reversed).
    """
    if request.subscription_id is not None:
        return f"terminate-{request.subscription_id}"
    assert request.phone_number is not None
    digest = hmac.new(key, request.phone_number.encode(), hashlib.sha256).hexdigest()
    return f"terminate-phone-{digest[:20]}"


def derived_reference_number(workflow_id: str, run_id: str, submission: int) -> str:
    """A 15-character reference unique per run and submission.

    sTN has no idempotency key; the reference is how a retried submit finds the
    activation its lost predecessor created.
    """
    digest = hashlib.sha256(f"{workflow_id}|{run_id}|{submission}".encode()).digest()
    return "CO" + base64.b32encode(digest).decode()[:13]


class Activation(CamelModel):
    """sTN's Activation object (only the fields we use are typed).

    The same shape describes a termination (TerminateSubscription) and a
    cancellation of one (CancelTerminateSubscription answers a *new* Activation,
    with its own id and ``activationType`` ``TERMINATE`` as well): which one an
    Activation is, is known from the call that returned it, not from its fields.
    sTN documents ``referenceNumber`` at the top level; our older sandbox put it
    in ``info``, which :attr:`reference` still reads.
    """

    model_config = CamelModel.model_config | {"extra": "allow"}

    id: str
    status: str
    activation_type: str | None = None
    reference_number: str | None = None
    subscription_id: str | None = None
    phone_number: str | None = None
    created_at: datetime | None = None
    modified_at: datetime | None = None
    activated_date: datetime | None = None
    info: dict[str, Any] = Field(default_factory=dict)

    @property
    def reference(self) -> str | None:
        """Our ``referenceNumber``: top level as documented (``info`` as a fallback)."""
        value = self.reference_number or self.info.get("referenceNumber")
        return str(value) if value else None

    @property
    def is_final(self) -> bool:
        """``DONE`` or ``ERROR``: sTN will not change it any more."""
        return self.status in FINAL_STATUSES

    @property
    def is_executed(self) -> bool:
        """Same as :attr:`is_final`. For a termination: sTN executed it (DONE) or
        gave up (ERROR); either way it can no longer be cancelled. For a
        cancellation activation DONE means *cancelled*, so never ask this of one."""
        return self.is_final

    @property
    def is_done(self) -> bool:
        """Succeeded: a termination's line is gone; a cancellation's termination is undone."""
        return self.status == ActivationStatus.DONE

    @property
    def is_cancelling(self) -> bool:
        """A termination whose cancellation sTN is still processing (``CANCELLING``)."""
        return self.status == ActivationStatus.CANCELLING

    @property
    def is_cancelled(self) -> bool:
        """Deprecated: sTN has no "cancelled" status. Now the same as
        :attr:`is_cancelling` (a cancellation was requested and is in progress).
        Whether a termination *was* cancelled is the cancellation activation's
        DONE; see :class:`CancelTermination`."""
        return self.is_cancelling

    @property
    def error_message(self) -> str:
        for key in ("errorMessage", "error", "message", "reason"):
            value = self.info.get(key)
            if value:
                return str(value)
        return f"sTN reported {self.status}"


class SubmitTermination(CamelModel):
    """Activity input: one TerminateSubscription call."""

    subscription_id: str | None = None
    phone_number: str | None = None
    wish_date: datetime | None = None
    reference_number: str


class SubmittedTermination(CamelModel):
    activation: Activation
    # True when a retry found the activation its lost predecessor created.
    recovered: bool = False
    attempt: int = 1


class AwaitActivation(CamelModel):
    """One activation by id: polled until final (``stn.await_activation_final``) or
    read once (``stn.get_activation``, e.g. to confirm a cancelled termination did
    not execute: its status is anything but ``DONE``)."""

    activation_id: str


class ActivationChecked(CamelModel):
    """A final activation and how many times sTN was asked."""

    activation: Activation
    checks: int


class CancelTermination(CamelModel):
    """Undo a submitted termination (``stn.cancel_termination``).

    ``submitted`` identifies a submit whose outcome the saga never learned
    (cancelled mid-flight): the activity then finds the activation by its
    reference number, and there may be nothing to undo (the activity returns None).

    The activity returns the **cancellation's** Activation: sTN cancels
    asynchronously, with a new activation (its own id, ``BUSY``). Follow it with
    ``stn.await_activation_final`` on that id: ``DONE`` = the termination is
    cancelled and will not execute; ``ERROR`` = the cancellation failed and the
    termination stands (it may still execute).
    """

    activation_id: str | None = None
    submitted: SubmitTermination | None = None
    note: str | None = Field(default=None, max_length=NOTE_MAX_LENGTH)

    @field_validator("note", mode="before")
    @classmethod
    def _fit_note(cls, value: str | None) -> str | None:
        return fit_to_limit(value, NOTE_MAX_LENGTH)


class LineTerminationStatus(CamelModel):
    """Everything an operator needs about one line termination (the ``status`` query)."""

    workflow_id: str
    phase: SagaPhase
    subscription_id: str | None
    phone_number: str | None = Field(description="masked: only the last four digits")
    customer_id: str | None
    wish_date: datetime | None
    reference_number: str | None
    activation_id: str | None
    activation_status: str | None
    # The CancelTerminateSubscription activation of a revoke, reschedule or undo.
    cancellation_id: str | None = None
    cancellation_status: str | None = None
    submissions: int
    provider_checks: int
    last_error: str | None
    steps: list[StepRecord]
    jeopardy: list[Jeopardy] = Field(
        default_factory=list, description="deadlines neared without being met (saga.jeopardy)"
    )
