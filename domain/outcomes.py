"""Outcome events: what a saga tells its subscribers, and the subscriptions themselves.

Pure code shared by the sagas (which events, when: ``workflows/outcome_events.py``),
the worker (publishing and delivering: ``activities/outcomes.py``,
``activities/webhooks.py``), the subscription store (``workflows/outcome_subscriptions.py``)
and the API and ``cancelctl`` (``starter/outcomes.py``). Events are CloudEvents 1.0 in
structured JSON; their ``data`` is the saga's public ``status`` (phone numbers masked,
no secret, no token), plus ``kind`` and a per-run ``sequence``. Deliveries are signed
the Standard Webhooks way (``webhook-id`` = the event id on every attempt).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from domain.common import (
    END,
    UNPRINTABLE,
    CamelModel,
    FieldProblem,
    InvalidRequest,
    SagaKind,
    parse_request,
)


class OutcomeEventType(StrEnum):
    """Every event type a saga emits (README "Outcome events": when each is emitted)."""

    SCHEDULED = "saga.scheduled"
    RESCHEDULED = "saga.rescheduled"
    REVOKED = "saga.revoked"
    COMPLETED = "saga.completed"
    FAILED = "saga.failed"
    COMPENSATED = "saga.compensated"
    NEEDS_ATTENTION = "saga.needs_attention"
    JEOPARDY = "saga.jeopardy"
    POINT_OF_NO_RETURN = "saga.point_of_no_return"


class JeopardyCause(StrEnum):
    """Why a saga is in jeopardy: it nears a deadline it has not met (once per cause)."""

    #: An Airalo future order still not cancelled :data:`AIRALO_CUTOFF_HORIZON` before
    #: its cut-off (after which Airalo no longer cancels it).
    AIRALO_CUTOFF = "airalo_cutoff"
    #: An sTN termination still not executed :data:`STN_BUSY_HORIZON` after its wish date.
    STN_BUSY = "stn_busy"
    #: A saga waiting in NEEDS_ATTENTION longer than :data:`NEEDS_ATTENTION_HORIZON`.
    NEEDS_ATTENTION = "needs_attention"


# Workflow-side constants (a change alters when timers fire, never which commands a
# run issues). Read at the moment a timer starts, never bound as defaults.
#: Airalo stops cancelling an order at its cut-off (24 h before its due date); 6 h
#: before it is also when its calls become deadline calls (``domain.lanes``).
AIRALO_CUTOFF_HORIZON = timedelta(hours=6)
#: sTN executes a termination at its wish date, within its processing time (seconds
#: to minutes in practice): 6 h later, something is wrong at sTN.
STN_BUSY_HORIZON = timedelta(hours=6)
#: An operator should answer NEEDS_ATTENTION within a working day.
NEEDS_ATTENTION_HORIZON = timedelta(hours=24)

#: Final phases and the event each emits (``SagaPhase`` values).
FINAL_EVENTS = {
    "COMPLETED": OutcomeEventType.COMPLETED,
    "FAILED": OutcomeEventType.FAILED,
    "REVOKED": OutcomeEventType.REVOKED,
    "COMPENSATED": OutcomeEventType.COMPENSATED,
}

#: CloudEvents ``source`` of every event: the API collection the saga is read from
#: (``source`` + ``subject`` = ``/v1/sagas/<workflow id>``).
EVENT_SOURCE = "/v1/sagas"
CLOUDEVENTS_VERSION = "1.0"
JSON = "application/json"

#: The worker's lane (task queue ``<queue>-webhooks``) that POSTs to subscribers.
WEBHOOKS_LANE = "webhooks"
#: The local activity that hands an event to the matching subscriptions.
PUBLISH_ACTIVITY = "outcomes.publish"
#: The activity that POSTs one event to one subscriber (on the webhooks lane).
DELIVER_ACTIVITY = "webhooks.deliver"
#: The outbox's local activity: the first attempt of a batch of events to one subscriber.
DELIVER_BATCH_ACTIVITY = "webhooks.deliver_batch"
#: The subscriber outbox's signals (one event to deliver; its subscription removed) and
#: queries (its recent deliveries; how many events wait for their first attempt).
OUTBOX_ENQUEUE = "enqueue"
#: First attempts a publish made itself (inline), for the outbox's recent deliveries.
OUTBOX_RECORD = "record"
OUTBOX_CLOSE = "close"
OUTBOX_RECENT = "recent"
OUTBOX_WAITING = "waiting"
#: Why a delivery ended without retrying (``ApplicationError`` types).
SUBSCRIBER_REFUSED = "SubscriberRefused"
SUBSCRIBER_GONE = "SubscriberGone"
SUBSCRIPTION_INACTIVE = "SubscriptionInactive"
DESTINATION_REFUSED = "DestinationRefused"


class Jeopardy(CamelModel):
    """A deadline the saga nears without having met it (shown in its status)."""

    cause: JeopardyCause
    at: datetime
    detail: str
    cleared_at: datetime | None = Field(
        default=None, description="when the cause stopped applying (the saga moved on)"
    )


class OutcomeEvent(BaseModel):
    """A CloudEvent 1.0 (structured JSON): the attribute names are the spec's own."""

    model_config = ConfigDict(extra="forbid")

    specversion: str = CLOUDEVENTS_VERSION
    id: str
    source: str = EVENT_SOURCE
    type: OutcomeEventType
    subject: str
    time: datetime
    datacontenttype: str = JSON
    data: dict[str, Any]

    def body(self) -> str:
        """The exact JSON text POSTed and signed."""
        return self.model_dump_json()


def event_id(uuid_hex: str) -> str:
    """An event's id from a UUID (``workflow.uuid4()``: the same on replay)."""
    return f"evt_{uuid_hex}"


# -- subscriptions -----------------------------------------------------------------------

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
MAX_URL_LENGTH = 2000
_B64 = "[A-Za-z0-9+/]"
#: A Standard Webhooks secret we accept, whole: the prefix, then base64 (padded or not)
#: of MIN_SECRET_BYTES to MAX_SECRET_BYTES bytes; what the API's document states.
SECRET_PATTERN = (
    f"^{SECRET_PREFIX}(?:"
    f"(?:{_B64}{{4}}){{8,20}}(?:{_B64}{{2}}(?:==)?|{_B64}{{3}}=?)?"
    f"|(?:{_B64}{{4}}){{21}}(?:{_B64}{{2}}(?:==)?)?"
    f"){END}"
)
#: A subscriber URL: http(s), a host name or IPv4 address (RFC 3986 reg-name
#: characters, so no credentials), an optional port up to 65535, no white space.
SUBSCRIBER_URL_PATTERN = (
    r"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9._~%!$&'()*+,;=-]+"
    r"(?::(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?"
    rf"(?:[/?#][^{UNPRINTABLE}]*)?{END}"
)
MAX_FILTER_VALUES = 100
#: After a rotation the previous secret still signs (both signatures are sent) this long.
ROTATION_OVERLAP = timedelta(hours=24)


def subscriptions_workflow_id(task_queue: str) -> str:
    """The one subscription store of the sagas on ``task_queue``."""
    return f"outcome-subscriptions-{task_queue}"


def outbox_workflow_id(subscription: str) -> str:
    """The one outbox of a subscription: every event for it is signalled there."""
    return f"outbox-{subscription}"


def delivery_workflow_id(event: str, subscription: str) -> str:
    """One delivery per (event, subscription): a repeated start finds it already there."""
    return f"delivery-{event}-{subscription}"


def secret_problem(secret: str) -> str | None:
    """Why ``secret`` is no Standard Webhooks key we accept, or ``None``."""
    if not secret.startswith(SECRET_PREFIX):
        return f"must start with {SECRET_PREFIX} (a Standard Webhooks secret)"
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:  # padded or not, as Standard Webhooks libraries accept both
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        return f"must be {SECRET_PREFIX} followed by base64"
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        return f"must hold {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes (base64), not {len(key)}"
    if not re.fullmatch(SECRET_PATTERN, secret):
        return f"must be {SECRET_PREFIX} followed by base64"
    return None


def url_problem(url: str) -> str | None:
    """Why ``url`` is no subscriber URL (http or https, a host, no credentials)."""
    if len(url) > MAX_URL_LENGTH:
        return f"at most {MAX_URL_LENGTH} characters"
    if not re.fullmatch(SUBSCRIBER_URL_PATTERN, url):
        return (
            "must be an http or https URL: a host name or IPv4 address, an optional "
            "port, no credentials, no white space"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "must be a valid http(s) URL"
    if parts.scheme not in ("http", "https"):
        return "must be an http or https URL"
    if not parts.hostname:
        return "must name a host"
    if parts.username or parts.password:
        return "must not carry credentials (the signature authenticates us)"
    return None


def address_refusal(address: str) -> str | None:
    """Why production must not POST to ``address`` (an IP), or ``None``: loopback,
    link-local, private, unspecified, multicast and reserved addresses are refused, so
    a subscription cannot make the product reach its own network (SSRF)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for refused, what in (
        (ip.is_loopback, "loopback"),
        (ip.is_unspecified, "unspecified"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
    ):
        if refused:
            return f"{address} is a {what} address: refused in production (no SSRF)"
    return None


class SubscriptionRequest(CamelModel):
    """``POST /v1/subscriptions``: where to POST, the secret that signs, what to send."""

    url: str = Field(description="http(s) URL the events are POSTed to")
    secret: str = Field(
        description=f"Standard Webhooks secret: {SECRET_PREFIX} + base64 of "
        f"{MIN_SECRET_BYTES}-{MAX_SECRET_BYTES} random bytes"
    )
    types: list[OutcomeEventType] = Field(min_length=1, max_length=len(OutcomeEventType))
    kinds: list[SagaKind] | None = Field(
        default=None, max_length=len(SagaKind), description="only these saga kinds"
    )
    customers: list[str] | None = Field(
        default=None, max_length=MAX_FILTER_VALUES, description="only these customer ids"
    )


class RotateSecretRequest(CamelModel):
    """A new secret; the previous one keeps signing for :data:`ROTATION_OVERLAP`."""

    secret: str


def parse_subscription_request(data: Mapping[str, Any]) -> SubscriptionRequest:
    """The request, or ``InvalidRequest`` naming every broken rule's field at once."""
    problems = []
    for name, check in (("url", url_problem), ("secret", secret_problem)):
        value = data.get(name)
        if isinstance(value, str) and (why := check(value)) is not None:
            problems.append(FieldProblem(field=name, rule=why))
    try:
        request = parse_request(SubscriptionRequest, data)
    except InvalidRequest as invalid:
        raise InvalidRequest([*problems, *invalid.problems]) from None
    if problems:
        raise InvalidRequest(problems)
    return request


def parse_rotate_request(data: Mapping[str, Any]) -> RotateSecretRequest:
    request = parse_request(RotateSecretRequest, data)
    if (why := secret_problem(request.secret)) is not None:
        raise InvalidRequest([FieldProblem(field="secret", rule=why)])
    return request


class Subscription(CamelModel):
    """A subscription as the store keeps it (with its secrets: never shown to callers)."""

    id: str
    url: str
    secret: str
    #: The secret before the last rotation, and until when it still signs.
    previous_secret: str | None = None
    previous_secret_until: datetime | None = None
    types: list[OutcomeEventType]
    kinds: list[str] | None = None
    customers: list[str] | None = None
    created_at: datetime
    disabled: str | None = None

    def matches(self, event_type: str, kind: str, customer_id: str | None) -> bool:
        return (
            self.disabled is None
            and event_type in self.types
            and (self.kinds is None or kind in self.kinds)
            and (self.customers is None or customer_id in self.customers)
        )

    def signing_secrets(self, now: datetime) -> list[str]:
        """The current secret, and the previous one while the overlap lasts."""
        secrets = [self.secret]
        if self.previous_secret and self.previous_secret_until and now < self.previous_secret_until:
            secrets.append(self.previous_secret)
        return secrets

    def public(self) -> SubscriptionView:
        return SubscriptionView(
            id=self.id,
            url=self.url,
            types=self.types,
            kinds=self.kinds,
            customers=self.customers,
            created_at=self.created_at,
            disabled=self.disabled,
            rotating_until=self.previous_secret_until if self.previous_secret else None,
        )


class SubscriptionView(CamelModel):
    """A subscription as the API and ``cancelctl`` show it: never a secret."""

    id: str
    url: str
    types: list[OutcomeEventType]
    kinds: list[str] | None = None
    customers: list[str] | None = None
    created_at: datetime
    disabled: str | None = Field(default=None, description="why it no longer receives events")
    rotating_until: datetime | None = Field(
        default=None, description="until when the previous secret still signs"
    )


class NewSubscription(CamelModel):
    """The store's ``add`` update: a validated request (the store picks the id)."""

    request: SubscriptionRequest


class RotateSecret(CamelModel):
    subscription_id: str
    secret: str


class DisableSubscription(CamelModel):
    subscription_id: str
    reason: str


class RemoveSubscription(CamelModel):
    subscription_id: str


class SubscriptionsState(CamelModel):
    """The store's whole state, carried over a continue-as-new."""

    subscriptions: list[Subscription] = Field(default_factory=list)


class SubscriptionStoreUpdate(StrEnum):
    ADD = "add"
    REMOVE = "remove"
    ROTATE = "rotate"
    DISABLE = "disable"


class SubscriptionStoreQuery(StrEnum):
    #: Public views (no secrets): the API and ``cancelctl``.
    LIST = "list"
    #: With secrets: only the worker's activities ask it.
    WITH_SECRETS = "with_secrets"


# -- publishing and delivering -------------------------------------------------------------


class PublishRequest(CamelModel):
    """The local activity's input: one event, and what subscriptions filter on."""

    event: OutcomeEvent
    kind: str
    customer_id: str | None = None
    #: The saga's task queue: its subscription store and the deliveries' queue.
    task_queue: str


class PublishResult(CamelModel):
    matched: int
    started: int
    #: Of those, attempted inline (the rest went to their outboxes).
    inline: int = 0


class FirstAttempt(CamelModel):
    """How the outbox's first attempt of a delivery it handed over went."""

    failure: str
    failure_type: str
    #: Whether the lane's activity goes on (5xx, 429, timeouts) or the delivery ends.
    retried: bool
    #: The subscriber's ``Retry-After`` (a 429), if it gave one.
    retry_after_seconds: float | None = None


class Delivery(CamelModel):
    """One event for one subscription (``WebhookDelivery``'s input)."""

    subscription_id: str
    store_id: str
    event: OutcomeEvent
    #: Set when the subscriber's outbox made the first attempt and it failed; a replay
    #: clears it (the replayed delivery attempts again at once).
    first_attempt: FirstAttempt | None = None


class DeliveryBatch(CamelModel):
    """The outbox's local activity's input: events for one subscription."""

    subscription_id: str
    store_id: str
    #: The sagas' task queue: where a failed first attempt's delivery workflow runs.
    task_queue: str
    events: list[OutcomeEvent]


class BatchAttempt(CamelModel):
    """How one event of a batch went: delivered, or handed to a ``WebhookDelivery``."""

    event_id: str
    status: int | None = None
    delivered: bool
    failure: str | None = None
    failure_type: str | None = None
    retried: bool = False


class BatchResult(CamelModel):
    attempts: list[BatchAttempt]
    #: The subscription was removed or disabled: the outbox ends once it is empty.
    inactive: bool = False


class OutboxDelivery(CamelModel):
    """One event's first attempt as the subscriber's outbox remembers it (its recent
    deliveries): made by the outbox, or inline by a publish and recorded there."""

    event_id: str
    event_type: str
    saga_id: str
    attempted_at: datetime
    status: int | None = None
    delivered: bool
    failure: str | None = None
    retried: bool = False


class OutboxState(CamelModel):
    """A subscriber outbox's input, carried over when it continues as new."""

    subscription_id: str
    store_id: str
    queued: list[OutcomeEvent] = Field(default_factory=list)
    recent: list[OutboxDelivery] = Field(default_factory=list)
    #: The latest event ids queued (a retried publish enqueues the same event again).
    seen: list[str] = Field(default_factory=list)


class DeliveryResult(CamelModel):
    status: int
    attempt: int


class DeliveryState(StrEnum):
    """A delivery as ``GET /v1/subscriptions/{id}/deliveries`` shows it."""

    DELIVERED = "delivered"
    RETRYING = "retrying"
    FAILED = "failed"


class DeliveryListed(CamelModel):
    delivery_id: str = Field(
        description="delivery-<event id>-<subscription id>: the WebhookDelivery workflow "
        "of an event not accepted at its first attempt (none exists for one that was)"
    )
    event_id: str | None
    event_type: str | None
    saga_id: str | None
    state: DeliveryState
    started_at: datetime | None
    closed_at: datetime | None
    attempt: int | None = Field(default=None, description="attempts so far (while retrying)")
    last_failure: str | None = Field(default=None, description="the last attempt's failure")


class DeliveryList(CamelModel):
    deliveries: list[DeliveryListed]


class SubscriptionList(CamelModel):
    subscriptions: list[SubscriptionView]


class ReplayResult(CamelModel):
    replayed: list[str] = Field(description="delivery workflow ids started again")
