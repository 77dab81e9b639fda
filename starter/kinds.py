"""The saga kinds: one entry per kind, read by every entry point and the worker.

An entry (:class:`SagaKindSpec`) holds everything that differs between kinds: the
request model and the domain's rules for it, the business key (workflow id), the
workflow, the search attributes provider webhooks find its runs by, and the name of
the kind at each entry point: the API path, the CloudEvent type, the ``cancelctl``
sub-command. :func:`starter.sagas.start` starts any kind from its entry; the API's
start routes and CloudEvents intake, ``cancelctl``, the worker, the reliability
suite and the benchmarks look kinds up in :data:`KINDS`. A new kind is one entry
here; a test registers a kind of its own with :meth:`SagaKinds.register`.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import SearchAttributePair

from config.settings import OrchestratorSettings
from domain.airalo import (
    FutureOrderCancellationRequest,
    future_order_cancellation_workflow_id,
    parse_future_order_cancellation_request,
)
from domain.churn import (
    CustomerChurnRequest,
    check_customer_churn_request,
    churn_workflow_id,
    parse_customer_churn_request,
)
from domain.common import SagaKind
from domain.rebilly import (
    OrderCancellationRequest,
    check_order_cancellation_request,
    order_cancellation_workflow_id,
    parse_order_cancellation_request,
)
from domain.stn import (
    TerminationRequest,
    check_termination_request,
    parse_termination_request,
    termination_workflow_id,
)
from starter import kind_flags
from starter.routing import routing_of
from workflows.customer_churn import CustomerChurnSaga
from workflows.future_order_cancellation import FutureOrderCancellationSaga
from workflows.line_termination import LineTerminationSaga
from workflows.order_cancellation import OrderCancellationSaga

R = TypeVar("R", bound=BaseModel)

_API_PATH = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


def no_clock_rules(request: Any, now: datetime) -> None:
    """For a kind whose requests have no rules that depend on the clock."""


def not_routed(request: Any) -> list[SearchAttributePair[Any]]:
    """For a kind no provider webhook is routed to."""
    return []


@dataclass(frozen=True)
class CliCommand(Generic[R]):
    """A kind's ``cancelctl`` sub-command (its flags live in :mod:`starter.kind_flags`)."""

    name: str
    #: The line in ``cancelctl --help``.
    help: str
    #: The text of ``cancelctl <name> --help``.
    description: str
    #: Adds the sub-command's arguments to its parser.
    add_flags: Callable[[argparse.ArgumentParser], None]
    #: The request from the parsed arguments (``InvalidRequest`` naming every problem).
    read: Callable[[argparse.Namespace], R]


@dataclass(frozen=True)
class SagaKindSpec(Generic[R]):
    """One saga kind, as every entry point and the worker see it."""

    #: The ``CancellationKind`` value: a :class:`SagaKind` member for the product's
    #: kinds, any string for a kind a test registers.
    kind: str
    #: The request the saga takes: the API's body, the CloudEvent's ``data``.
    model: type[R]
    #: The domain's ``parse_*``: every broken rule as ``InvalidRequest``. With the clock
    #: (``now``) it applies the date rules; with None it skips them (to read a request
    #: accepted earlier: see ``starter.api.starting``).
    parse: Callable[[Mapping[str, Any], datetime | None], R]
    #: The workflow class (``@workflow.defn`` with a name); its ``run`` is what starts.
    workflow: type
    #: The business key of a request: a repeat of it attaches to the open run.
    workflow_id: Callable[[R, OrchestratorSettings], str]
    #: A run's one line for the Temporal UI (no PII).
    summary: Callable[[R], str]
    #: The start endpoint's one-line summary in the OpenAPI document.
    title: str
    #: The collection under /v1, e.g. "line-terminations".
    api_path: str
    #: The CloudEvent ``type`` that starts it, e.g. "line.termination_requested".
    event_type: str
    cli: CliCommand[R]
    #: The rules that depend on the clock (``InvalidRequest``), checked by
    #: ``starter.sagas.start`` at the start, whichever entry point parsed the request.
    check: Callable[[R, datetime], None] = no_clock_rules
    #: The search attributes provider webhooks find a run by (``starter.routing``).
    routing: Callable[[R], list[SearchAttributePair[Any]]] = not_routed

    def __post_init__(self) -> None:
        if _definition(self.workflow).name is None:
            raise ValueError(f"saga kind {self.kind}: a dynamic workflow has no type name")
        if not _API_PATH.fullmatch(self.api_path):
            raise ValueError(
                f"saga kind {self.kind}: API path {self.api_path!r} must be lowercase words "
                "joined by '-'"
            )

    @property
    def workflow_type(self) -> str:
        """The workflow type name (``@workflow.defn(name=...)``), e.g. "LineTermination"."""
        return _definition(self.workflow).name or ""

    @property
    def run(self) -> Callable[..., Awaitable[Any]]:
        """The workflow's run method: what ``Client.start_workflow`` starts."""
        return _definition(self.workflow).run_fn


def _definition(cls: type) -> workflow._Definition:
    """What ``@workflow.defn`` recorded on ``cls`` (ValueError if it is no workflow).

    The SDK's own record of the class (type name, run method); it has no public
    accessor.
    """
    return workflow._Definition.must_from_class(cls)


class DuplicateSagaKind(ValueError):
    """A kind would share a name another kind already has at some entry point."""


class SagaKinds:
    """The registry: kinds in registration order, looked up by each entry point's name.

    Every name is unique across kinds (the kind, the API path, the event type, the
    ``cancelctl`` command, the workflow type and the request model): registering a
    second holder of one raises :class:`DuplicateSagaKind`.
    """

    def __init__(self, specs: Iterable[SagaKindSpec[Any]] = ()) -> None:
        self._specs: dict[str, SagaKindSpec[Any]] = {}
        for spec in specs:
            self.register(spec)

    def __iter__(self) -> Iterator[SagaKindSpec[Any]]:
        return iter(list(self._specs.values()))

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, kind: object) -> bool:
        return kind in self._specs

    def __getitem__(self, kind: str) -> SagaKindSpec[Any]:
        try:
            return self._specs[kind]
        except KeyError:
            raise KeyError(f"no saga kind {kind!r}; there are {', '.join(self._specs)}") from None

    def by_event_type(self, event_type: str) -> SagaKindSpec[Any] | None:
        return self._find(lambda spec: spec.event_type == event_type)

    def by_command(self, name: str) -> SagaKindSpec[Any] | None:
        return self._find(lambda spec: spec.cli.name == name)

    def by_api_path(self, path: str) -> SagaKindSpec[Any] | None:
        return self._find(lambda spec: spec.api_path == path)

    def by_workflow_type(self, name: str) -> SagaKindSpec[Any] | None:
        return self._find(lambda spec: spec.workflow_type == name)

    def for_request(self, request: BaseModel) -> SagaKindSpec[Any]:
        """The kind whose model ``request`` is (``KeyError`` if none)."""
        found = self._find(lambda spec: type(request) is spec.model)
        if found is None:
            raise KeyError(f"no saga kind takes a {type(request).__name__}")
        return found

    def register(self, spec: SagaKindSpec[Any]) -> Registration:
        """Add ``spec``; as a context manager (``with KINDS.register(spec):``) it is
        removed again on exit. ``DuplicateSagaKind`` if a name is taken."""
        for other in self._specs.values():
            for name, value_of in _UNIQUE.items():
                taken = value_of(spec)
                if value_of(other) == taken:
                    raise DuplicateSagaKind(
                        f"saga kind {spec.kind}: the {name} {taken!r} is saga kind {other.kind}'s"
                    )
        self._specs[spec.kind] = spec
        return Registration(self, spec)

    def unregister(self, kind: str) -> None:
        """Remove a kind (``KeyError`` if there is none)."""
        spec = self[kind]  # the clear KeyError
        del self._specs[spec.kind]

    def _find(self, matches: Callable[[SagaKindSpec[Any]], bool]) -> SagaKindSpec[Any] | None:
        return next((spec for spec in self._specs.values() if matches(spec)), None)


#: What must differ between two kinds, by what a duplicate is called in the error.
_UNIQUE: dict[str, Callable[[SagaKindSpec[Any]], object]] = {
    "kind": lambda spec: spec.kind,
    "API path": lambda spec: spec.api_path,
    "event type": lambda spec: spec.event_type,
    "cancelctl command": lambda spec: spec.cli.name,
    "workflow type": lambda spec: spec.workflow_type,
    "request model": lambda spec: spec.model,
}


@dataclass(frozen=True)
class Registration:
    """A registered kind; leaving ``with`` removes it again (for tests)."""

    kinds: SagaKinds
    spec: SagaKindSpec[Any]

    def __enter__(self) -> SagaKindSpec[Any]:
        return self.spec

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.kinds.unregister(self.spec.kind)


# -- the product's kinds ----------------------------------------------------------------


def _termination_workflow_id(request: TerminationRequest, settings: OrchestratorSettings) -> str:
    # A phone number is PII: it is hashed with the deployment's key.
    return termination_workflow_id(request, settings.workflow_id_key.get_secret_value().encode())


def _parse_future_orders(
    data: Mapping[str, Any], now: datetime | None
) -> FutureOrderCancellationRequest:
    # No date rules: whether each order can still be cancelled is Airalo's to say (the
    # saga looks every order up first).
    return parse_future_order_cancellation_request(data)


LINE_TERMINATION = SagaKindSpec(
    kind=SagaKind.LINE_TERMINATION,
    model=TerminationRequest,
    parse=parse_termination_request,
    check=check_termination_request,
    workflow=LineTerminationSaga,
    workflow_id=_termination_workflow_id,
    summary=TerminationRequest.summary,
    title="Terminate an sTN mobile line (LineTermination)",
    api_path="line-terminations",
    event_type="line.termination_requested",
    cli=CliCommand(
        name="terminate",
        help="terminate an sTN mobile line, now or at a wish date",
        description="Terminate an sTN mobile subscription. Prints the saga's workflow id; "
        "a second request for the same line attaches to the running saga.",
        add_flags=kind_flags.add_terminate_flags,
        read=kind_flags.termination_request,
    ),
)

ORDER_CANCELLATION = SagaKindSpec(
    kind=SagaKind.ORDER_CANCELLATION,
    model=OrderCancellationRequest,
    parse=parse_order_cancellation_request,
    check=check_order_cancellation_request,
    workflow=OrderCancellationSaga,
    # A later run of the same order gets a new Rebilly cancellation id.
    workflow_id=lambda request, _settings: order_cancellation_workflow_id(request),
    summary=OrderCancellationRequest.summary,
    title="Cancel a Rebilly order (OrderCancellation)",
    api_path="order-cancellations",
    event_type="billing.order_cancel_requested",
    routing=lambda request: routing_of(rebilly=request),
    cli=CliCommand(
        name="cancel-order",
        help="cancel a Rebilly order, now, at a churn time or at its next renewal",
        description="Cancel a Rebilly billing order. Prints the saga's workflow id "
        "(cancel-order-ORDER_ID); a second request for the same order attaches to the "
        "running saga. Without --churn-time or --policy the order churns now.",
        add_flags=kind_flags.add_cancel_order_flags,
        read=kind_flags.order_cancellation_request,
    ),
)

FUTURE_ORDER_CANCELLATION = SagaKindSpec(
    kind=SagaKind.FUTURE_ORDER_CANCELLATION,
    model=FutureOrderCancellationRequest,
    parse=_parse_future_orders,
    workflow=FutureOrderCancellationSaga,
    # The sorted request ids, hashed: the same set asked twice (in any order) attaches
    # to the running saga; a later run hears "already processed" for those cancelled.
    workflow_id=lambda request, _settings: future_order_cancellation_workflow_id(request),
    summary=FutureOrderCancellationRequest.summary,
    title="Cancel Airalo future eSIM orders (FutureOrderCancellation)",
    api_path="future-order-cancellations",
    event_type="esim.future_orders_cancel_requested",
    routing=lambda request: routing_of(airalo=request),
    cli=CliCommand(
        name="cancel-future-orders",
        help="cancel Airalo future eSIM orders by request id",
        description="Cancel one or more Airalo future orders (any number: they are sent "
        "in batches of ten). Prints the saga's workflow id; the same set of ids asked "
        "again attaches to the running saga. `status` shows one outcome per id.",
        add_flags=kind_flags.add_cancel_future_orders_flags,
        read=kind_flags.future_order_request,
    ),
)

CUSTOMER_CHURN = SagaKindSpec(
    kind=SagaKind.CUSTOMER_CHURN,
    model=CustomerChurnRequest,
    parse=parse_customer_churn_request,
    check=check_customer_churn_request,
    workflow=CustomerChurnSaga,
    # One churn per customer at a time: every part ends together.
    workflow_id=lambda request, _settings: churn_workflow_id(request),
    summary=CustomerChurnRequest.summary,
    title="A customer leaves: line, billing and eSIM orders together (CustomerChurn)",
    api_path="customer-churns",
    event_type="customer.churned",
    routing=lambda request: routing_of(rebilly=request.rebilly, airalo=request.airalo),
    cli=CliCommand(
        name="churn",
        help="customer leaves on a date: line, billing and eSIM orders end together",
        description="Start the customer churn saga (workflow id churn-CUSTOMER_ID): the "
        "billing cancellation is drafted, the line termination submitted and the future "
        "eSIM orders due after the date cancelled; at the date sTN terminates the line "
        "and billing is confirmed. If the line cannot be terminated, everything is undone.",
        add_flags=kind_flags.add_churn_flags,
        read=kind_flags.churn_request,
    ),
)

#: Every saga kind, in the order entry points list them.
KINDS = SagaKinds([LINE_TERMINATION, ORDER_CANCELLATION, FUTURE_ORDER_CANCELLATION, CUSTOMER_CHURN])
