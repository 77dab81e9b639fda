"""Models and rules every saga shares: phases, the audit trail, input problems.

Pure code: no I/O, no clock. Workflows import it through
``workflow.unsafe.imports_passed_through()``, starters and activities import it
directly, so the same model describes a saga everywhere.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

M = TypeVar("M", bound=BaseModel)


#: The end of a text, in JSON Schema's regex dialect and Python's alike: a pattern
#: ending ``$`` also matches a text with one more newline where it is searched, as a
#: schema's ``pattern`` is.
END = r"(?![\s\S])"
#: Characters no URL or id of ours holds: controls and every white space of both
#: dialects (their ``\s`` differ: Python's also has U+001C-U+001F and U+0085).
UNPRINTABLE = (
    "\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
)


def _date_as_sent(value: object) -> object:
    """A date on the wire is ISO 8601 text (a ``datetime`` in Python): pydantic would
    also take a number as seconds since 1970, which no caller means and no schema says."""
    if value is None or isinstance(value, str | datetime):
        return value
    raise ValueError("must be an ISO 8601 date and time with a UTC offset")


#: A date and time a request carries, as text (or a ``datetime`` from Python callers).
DateAsSent = Annotated[datetime, BeforeValidator(_date_as_sent)]


class CamelModel(BaseModel):
    """Base for every model on the wire: camelCase outside, snake_case in Python.

    Temporal's pydantic converter serialises with the aliases, so workflow
    histories, ``cancelctl status --json`` and (later) the HTTP API all show the
    same field names as the providers' documentation.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
    )


class SagaPhase(StrEnum):
    """Where a saga is. Stored in the ``CancellationStatus`` search attribute."""

    RECEIVED = "RECEIVED"
    SUBMITTING = "SUBMITTING"
    WAITING = "WAITING"
    POLLING = "POLLING"
    REVOKING = "REVOKING"
    RESCHEDULING = "RESCHEDULING"
    COMPENSATING = "COMPENSATING"
    NEEDS_ATTENTION = "NEEDS_ATTENTION"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    REVOKED = "REVOKED"
    COMPENSATED = "COMPENSATED"

    @property
    def is_final(self) -> bool:
        return self in FINAL_PHASES


FINAL_PHASES = frozenset(
    {SagaPhase.COMPLETED, SagaPhase.FAILED, SagaPhase.REVOKED, SagaPhase.COMPENSATED}
)


class SagaKind(StrEnum):
    """What a saga cancels. Stored in the ``CancellationKind`` search attribute."""

    LINE_TERMINATION = "LINE_TERMINATION"
    ORDER_CANCELLATION = "ORDER_CANCELLATION"
    FUTURE_ORDER_CANCELLATION = "FUTURE_ORDER_CANCELLATION"
    CUSTOMER_CHURN = "CUSTOMER_CHURN"


class Provider(StrEnum):
    STN = "stn"
    REBILLY = "rebilly"
    AIRALO = "airalo"


def clean_text(value: str) -> str:
    """Input text in one form, whatever the entry point: NFKC (full-width letters and
    digits become ASCII, so one business key has one workflow id) and trimmed."""
    return unicodedata.normalize("NFKC", value).strip()


def clean_identifier(value: str | None) -> str | None:
    """An id a caller gives us (subscription, order, customer, reference), in one
    normal form; never blank, no control characters. Length limits stay on each field."""
    if value is None:
        return None
    cleaned = clean_text(value)
    if not cleaned:
        raise ValueError("must not be blank")
    if not cleaned.isprintable():
        raise ValueError("must not contain control characters")
    return cleaned


class OperatorRequestKind(StrEnum):
    """What an operator asks a running saga: each is the name of the saga's update.

    One vocabulary for the workflows (``@workflow.update(name=...)``), ``starter/``
    and ``cancelctl``: a request kind is never spelt as a string literal elsewhere.
    """

    REVOKE = "revoke"
    RESCHEDULE = "reschedule"
    CONFIRM = "confirm"
    RESOLVE = "resolve"


class SagaQuery(StrEnum):
    """The queries every saga answers."""

    STATUS = "status"
    # What the saga's validator would answer an operator request now (bulk dry runs).
    WOULD_REFUSE = "would_refuse"


class StepRecord(CamelModel):
    """One line of a saga's audit trail."""

    at: datetime
    step: str
    detail: str = ""


class SagaSignal(StrEnum):
    """The signals every saga that holds provider state accepts."""

    PROVIDER_NOTICE = "provider_notice"


class NoticeEvent(StrEnum):
    """Provider webhook events a saga acts on, in the provider's own words."""

    # Airalo: a future order fired (was processed); the only documented way to tell
    # "fired" from "cancelled".
    AIRALO_FUTURE_ORDER_FIRED = "future_order.fired"
    REBILLY_SUBSCRIPTION_CANCELED = "subscription-canceled"
    REBILLY_SUBSCRIPTION_CHURNED = "subscription-churned"
    REBILLY_SUBSCRIPTION_REACTIVATED = "subscription-reactivated"


class ProviderNotice(CamelModel):
    """A provider's own word (a webhook) about something a saga holds, routed to it.

    Providers may deliver a webhook more than once: a saga records each notice once.
    """

    provider: Provider
    event: str
    # What it is about: an Airalo request_id, a Rebilly order id.
    subject: str = Field(min_length=1, max_length=128)
    # When the provider says it happened, if it says.
    at: datetime | None = None
    detail: str = Field(default="", max_length=500)

    def key(self) -> tuple[str, str, str]:
        return (self.provider, self.event, self.subject)


class RevokeRequest(CamelModel):
    """The ``revoke`` update every saga accepts: undo before the provider acted."""

    # sTN's note field holds at most 164 characters; the reason is sent there.
    reason: str | None = Field(default=None, max_length=164)


class RescheduleRequest(CamelModel):
    """The ``reschedule`` update: move the wish date (churn time) of a waiting saga."""

    wish_date: datetime


def fit_to_limit(text: str | None, limit: int) -> str | None:
    """Text we forward to a provider, cut to fit its field (the cut marked with "…").

    Saga-built text (``revoked: <reason>``, a failure cause quoting a provider's
    error) can exceed a provider's limit that the operator's own input respects;
    refusing it inside a workflow would fail the workflow task and leave the saga
    stuck, so it is fitted instead. Operator input is checked at the edge.
    """
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


class FieldProblem(CamelModel):
    """One rule one field broke, phrased for the person who sent it."""

    field: str
    rule: str


class InvalidRequest(ValueError):
    """Input rejected at the edge: nothing was started.

    Carries every problem found, not just the first, so a caller fixes them in
    one go. The CLI prints them and exits 2; the HTTP API answers 422.
    """

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.rule}" for p in problems))


def parse_request(model: type[M], data: Mapping[str, Any]) -> M:
    """Validate input at the edge: every broken rule raised as ``InvalidRequest``."""
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InvalidRequest(problems_from_validation_error(error)) from None


def problems_from_validation_error(error: Exception) -> list[FieldProblem]:
    """Turn a pydantic ``ValidationError`` into field problems (alias names)."""
    from pydantic import ValidationError

    if not isinstance(error, ValidationError):
        return [FieldProblem(field="request", rule=str(error))]
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "request"
        message = item["msg"].removeprefix("Value error, ")
        problems.append(FieldProblem(field=field, rule=message))
    return problems


#: The farthest ahead a caller may schedule anything (a ``wishDate``, a Rebilly
#: ``churnTime``, a reschedule). Neither sTN nor Rebilly documents a limit
#: (``shared/docs/provider-contracts.md``; Airalo's "at most one year ahead" is about
#: its future orders' due dates, not ours). Two years covers any notice period; a date
#: beyond it is a typo or hostile input (issue #10: a wish date at the end of year 9999
#: made the sandbox's sTN overflow and fail every request after it).
MAX_SCHEDULE_AHEAD = timedelta(days=730)
#: The rules :func:`schedule_problems` reports, word for word (the CLI prints them,
#: the API answers them, tests match them).
RULE_NOT_IN_THE_PAST = "must not be in the past"
RULE_NOT_TOO_FAR_AHEAD = f"must be at most {MAX_SCHEDULE_AHEAD.days} days ahead"


def schedule_problems(field: str, when: Any, now: datetime | None) -> list[FieldProblem]:
    """The clock's rules for a date a caller schedules: not past, not too far ahead.

    The one home of these rules: every parse function, the reschedule checks and
    the sagas' reschedule validators use it. ``when`` is taken as the caller sent
    it: a datetime, or an ISO 8601 string; anything else, or a date without a UTC
    offset, yields no problem here (the request model reports that one).
    ``now=None`` skips the clock: the rules then say nothing (a redelivery of a
    request accepted earlier is looked up, not judged again by today's clock).

    These rules are never part of a request model's own validation: a workflow
    validates its input again on every replay, long after the date has passed.
    """
    if now is None:
        return []
    if isinstance(when, str):
        try:
            when = datetime.fromisoformat(when)
        except ValueError:
            return []
    if not isinstance(when, datetime) or when.tzinfo is None:
        return []
    if when < now:
        return [FieldProblem(field=field, rule=RULE_NOT_IN_THE_PAST)]
    if when - now > MAX_SCHEDULE_AHEAD:
        return [FieldProblem(field=field, rule=RULE_NOT_TOO_FAR_AHEAD)]
    return []


def check_schedule(field: str, when: Any, now: datetime) -> None:
    """:func:`schedule_problems` at the edge: raise them as ``InvalidRequest``."""
    problems = schedule_problems(field, when, now)
    if problems:
        raise InvalidRequest(problems)


def refuse_past_wish_date(wish_date: datetime, now: datetime) -> None:
    """The reschedule validators' rule (raises ``ValueError`` for the caller).

    Despite its name (kept: the sagas' validators import it), it applies every
    rule of :func:`schedule_problems`: not in the past, not too far ahead.
    Validators do not run on replay, so ``now`` (``workflow.now()``) is safe here.
    """
    if wish_date.tzinfo is None:
        raise ValueError("wishDate must carry a UTC offset")
    problems = schedule_problems("wishDate", wish_date, now)
    if problems:
        raise ValueError(f"wishDate {wish_date.isoformat()} {problems[0].rule}")


class ErrorType(StrEnum):
    """``ApplicationError.type`` values shared by activities and workflows."""

    # The provider refused the request (4xx): retrying cannot help.
    PROVIDER_REJECTED = "ProviderRejected"
    # Timeout, 5xx, 429, connection failure: retried by the activity's policy.
    PROVIDER_UNAVAILABLE = "ProviderUnavailable"
    # A polled provider status is not final yet: benign, retried.
    STILL_PENDING = "StillPending"
    # An operator request (update) the saga could not apply.
    REQUEST_REFUSED = "RequestRefused"
