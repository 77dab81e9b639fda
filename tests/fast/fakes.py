"""Every provider activity, mocked by name: the fast tier's stand-in for the providers.

The workflows call activities by name (``StnActivity``, ``RebillyActivity``,
``AiraloActivity``), so a worker that registers these functions under the same
names runs the real workflow code against them. Each fake keeps just enough state
to answer like its provider (an activation to poll, a cancellation to complete,
future orders to list and cancel) and records every call, in order, with the
domain model the workflow sent. A test changes an answer with :meth:`FakeProviders.on`
(answers are used in order, then the default applies again), holds a call in
flight with a :class:`Gate`, or makes a provider refuse with :func:`reject`.

sTN cancels asynchronously (``domain.stn.CancelTermination``): a cancel answers a
new activation, ``BUSY``, that ends ``DONE`` (cancelled) when polled. How a saga
confirms a cancellation (polling that activation, reading the termination) is
left out of ``names(checks=False)``, so a test of what is undone, and in which
order, does not depend on it.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.airalo import (
    CANCELLATION_WINDOW,
    REQUEST_ID_LENGTH,
    AiraloActivity,
    CancelFutureOrders,
    CancelFutureOrdersResult,
    CancelRejection,
    CreatedFutureOrder,
    CreateFutureOrder,
    FutureOrder,
    FutureOrdersListed,
    FutureOrdersPage,
    ListFutureOrders,
    ListFutureOrdersPage,
    RejectionKind,
    page_digest,
)
from domain.common import ErrorType
from domain.rebilly import (
    Cancellation,
    CancellationChecked,
    CancellationRef,
    ChurnTimePolicy,
    DraftDeleted,
    Money,
    PutCancellation,
    PutResult,
    Reactivated,
    ReactivateOrder,
    ReactivationOutcome,
    RebillyActivity,
    RebillyStatus,
)
from domain.stn import (
    Activation,
    ActivationChecked,
    AwaitActivation,
    CancelTermination,
    StnActivity,
    SubmittedTermination,
    SubmitTermination,
)

Answer = Callable[[Any], Any]  # the activity's input → its result (or an awaitable of it)

# Rebilly's preview of every fake cancellation: the proration credit.
SUBTOTAL = Money(amount=-12.5, currency="EUR")


@dataclass(frozen=True)
class Call:
    activity: str
    arg: Any
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


def reject(message: str) -> Answer:
    """The provider refuses (a 4xx): non-retryable, as the real activities raise it."""

    def answer(_: Any) -> Any:
        raise ApplicationError(message, type=ErrorType.PROVIDER_REJECTED, non_retryable=True)

    return answer


def unavailable(message: str) -> Answer:
    """The provider is down (5xx, timeout): retryable, as the real activities raise it."""

    def answer(_: Any) -> Any:
        raise ApplicationError(message, type=ErrorType.PROVIDER_UNAVAILABLE)

    return answer


class Gate:
    """Holds a call in flight until the test opens it: ``fakes.on(name, gate.hold(...))``."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self._open = asyncio.Event()

    def open(self) -> None:
        self._open.set()

    def hold(self, then: Answer) -> Answer:
        async def answer(arg: Any) -> Any:
            self.entered.set()
            await self._open.wait()
            result = then(arg)
            return await result if inspect.isawaitable(result) else result

        return answer


def request_id() -> str:
    """An Airalo-shaped request id (exactly 25 characters)."""
    return uuid.uuid4().hex[:REQUEST_ID_LENGTH]


class FakeProviders:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._scripts: dict[str, deque[Answer]] = {}
        self._numbers = itertools.count(1)
        # sTN: what a termination's QueryActivation ends with, and a cancellation's.
        self.stn_outcome = "DONE"
        self.stn_message = ""
        self.stn_cancel_outcome = "DONE"
        self.activations: dict[str, Activation] = {}
        # Cancellation activation id → the termination it cancels.
        self.stn_cancellations: dict[str, str] = {}
        # Rebilly: cancellations by our id.
        self.cancellations: dict[str, Cancellation] = {}
        # Airalo: the future orders it still lists (pending), by request id.
        self.future_orders: dict[str, FutureOrder] = {}
        self._defaults: dict[str, Answer] = {
            StnActivity.SUBMIT_TERMINATION: self._stn_submit,
            StnActivity.AWAIT_ACTIVATION_FINAL: self._stn_await_final,
            StnActivity.CANCEL_TERMINATION: self._stn_cancel,
            StnActivity.GET_ACTIVATION: self._stn_get,
            RebillyActivity.PUT_CANCELLATION: self._rebilly_put,
            RebillyActivity.FIND_CANCELLATION: self._rebilly_find,
            RebillyActivity.AWAIT_CANCELLATION_COMPLETED: self._rebilly_await_completed,
            RebillyActivity.REACTIVATE_ORDER: self._rebilly_reactivate,
            RebillyActivity.DELETE_DRAFT: self._rebilly_delete_draft,
            AiraloActivity.LIST_FUTURE_ORDERS: self._airalo_list,
            AiraloActivity.LIST_FUTURE_ORDERS_PAGE: self._airalo_list_page,
            AiraloActivity.CANCEL_FUTURE_ORDERS: self._airalo_cancel,
            AiraloActivity.CREATE_FUTURE_ORDER: self._airalo_create,
        }

    # -- the test's controls --------------------------------------------------------

    def on(self, name: str, *answers: Answer) -> None:
        """The next calls of ``name`` get these answers, in order; then the default."""
        self._scripts.setdefault(name, deque()).extend(answers)

    def always(self, name: str, answer: Answer) -> None:
        """From now on ``name`` answers this way (scripted answers still come first)."""
        self._defaults[name] = answer

    def default(self, name: str) -> Answer:
        return self._defaults[name]

    def names(self, *, checks: bool = True) -> list[str]:
        """Every activity called so far, in order (retries included).

        ``checks=False`` leaves out the reads that only confirm an sTN cancellation
        (polling the cancellation's activation, reading an activation once).
        """
        return [call.activity for call in self.calls if checks or not self._is_check(call)]

    def _is_check(self, call: Call) -> bool:
        if call.activity == StnActivity.GET_ACTIVATION:
            return True
        return (
            call.activity == StnActivity.AWAIT_ACTIVATION_FINAL
            and call.arg.activation_id in self.stn_cancellations
        )

    def args(self, name: str) -> list[Any]:
        """The inputs ``name`` was called with, in order."""
        return [call.arg for call in self.calls if call.activity == name]

    def add_future_order(
        self, due: datetime, description: str | None = None, *, cutoff: datetime | None = None
    ) -> str:
        """A pending Airalo future order due at ``due``; its cut-off is 24 h before, or
        ``cutoff`` to the second (Airalo's own dates have minutes only)."""
        if cutoff is None:
            due = due.replace(second=0, microsecond=0)
        order = FutureOrder(
            request_id=request_id(),
            package_id="pkg-fast",
            quantity=1,
            due_date=due,
            latest_cancellation_date=cutoff or due - CANCELLATION_WINDOW,
            description=description,
            status="pending",
        )
        self.future_orders[order.request_id] = order
        return order.request_id

    async def _answer(self, name: str, arg: Any) -> Any:
        self.calls.append(Call(name, arg))
        script = self._scripts.get(name)
        answer = script.popleft() if script else self._defaults[name]
        result = answer(arg)
        return await result if inspect.isawaitable(result) else result

    # -- default answers: a provider that does what it is asked ---------------------

    def _stn_activation(self, like: SubmitTermination | Activation) -> Activation:
        activation = Activation(
            id=f"ACT-{next(self._numbers)}",
            status="BUSY",
            activation_type="TERMINATE",
            reference_number=like.reference_number,
            subscription_id=like.subscription_id,
            phone_number=like.phone_number,
            created_at=datetime.now(UTC),
        )
        self.activations[activation.id] = activation
        return activation

    def _stn_submit(self, request: SubmitTermination) -> SubmittedTermination:
        return SubmittedTermination(activation=self._stn_activation(request))

    def _stn_await_final(self, request: AwaitActivation) -> ActivationChecked:
        activation_id = request.activation_id
        if activation_id in self.stn_cancellations:
            status, message = self.stn_cancel_outcome, ""
        else:
            status, message = self.stn_outcome, self.stn_message
        info = {"errorMessage": message} if message else {}
        final = self.activations[activation_id].model_copy(update={"status": status, "info": info})
        self.activations[final.id] = final
        return ActivationChecked(activation=final, checks=1)

    def _stn_get(self, request: AwaitActivation) -> Activation:
        return self.activations[request.activation_id]

    def _stn_cancel(self, request: CancelTermination) -> Activation | None:
        """A new activation for the cancellation; the termination is CANCELLING."""
        termination_id = request.activation_id
        if termination_id is None:
            # A submit whose answer the saga never got: find it by its reference.
            assert request.submitted is not None
            reference = request.submitted.reference_number
            made = [a.id for a in self.activations.values() if a.reference == reference]
            if not made:
                return None
            termination_id = made[0]
        termination = self.activations[termination_id].model_copy(update={"status": "CANCELLING"})
        self.activations[termination.id] = termination
        cancellation = self._stn_activation(termination)
        self.stn_cancellations[cancellation.id] = termination.id
        return cancellation

    def _rebilly_put(self, request: PutCancellation) -> PutResult:
        body = request.body
        now = datetime.now(UTC).replace(microsecond=0)
        if body.churn_time is not None:
            churn = body.churn_time
        elif body.churn_time_policy == ChurnTimePolicy.AT_NEXT_RENEWAL:
            churn = now + timedelta(days=30)
        else:
            churn = now
        existing = self.cancellations.get(request.cancellation_id)
        cancellation = Cancellation(
            id=request.cancellation_id,
            order_id=body.order_id,
            status=body.status,
            churn_time=churn,
            churn_time_policy=body.churn_time_policy,
            reason=body.reason,
            canceled_by=body.canceled_by,
            prorated=body.prorated,
            line_item_subtotal=SUBTOTAL,
        )
        self.cancellations[cancellation.id] = cancellation
        return PutResult(cancellation=cancellation, created=existing is None)

    def _rebilly_find(self, request: CancellationRef) -> Cancellation | None:
        return self.cancellations.get(request.cancellation_id)

    def _rebilly_await_completed(self, request: CancellationRef) -> CancellationChecked:
        current = self.cancellations[request.cancellation_id]
        if current.status == RebillyStatus.CONFIRMED:
            current = current.model_copy(update={"status": RebillyStatus.COMPLETED})
            self.cancellations[current.id] = current
        return CancellationChecked(cancellation=current, checks=1)

    def _rebilly_reactivate(self, request: ReactivateOrder) -> Reactivated:
        current = self.cancellations[request.cancellation_id]
        if current.status == RebillyStatus.COMPLETED:
            return Reactivated(outcome=ReactivationOutcome.ALREADY_COMPLETED, cancellation=current)
        revoked = current.model_copy(update={"status": RebillyStatus.REVOKED})
        self.cancellations[revoked.id] = revoked
        return Reactivated(
            outcome=ReactivationOutcome.REACTIVATED,
            cancellation=revoked,
            reactivation_id=f"react-{next(self._numbers)}",
        )

    def _rebilly_delete_draft(self, request: CancellationRef) -> DraftDeleted:
        gone = self.cancellations.pop(request.cancellation_id, None) is None
        return DraftDeleted(cancellation_id=request.cancellation_id, already_gone=gone)

    def _airalo_list(self, request: ListFutureOrders) -> FutureOrdersListed:
        orders = list(self.future_orders.values())
        if request.request_ids is not None:
            orders = [order for order in orders if order.request_id in request.request_ids]
        if request.from_due_date is not None:
            orders = [order for order in orders if order.due_date >= request.from_due_date]
        if request.to_due_date is not None:
            orders = [order for order in orders if order.due_date <= request.to_due_date]
        return FutureOrdersListed(orders=orders, pages=1, listed=len(self.future_orders))

    def _airalo_list_page(self, request: ListFutureOrdersPage) -> FutureOrdersPage:
        """One page holds every order of its status (the fake's orders are all pending)."""
        window = ListFutureOrders(
            from_due_date=request.from_due_date, to_due_date=request.to_due_date
        )
        listed = self._airalo_list(window).orders if request.page == 1 else []
        page = [order for order in listed if order.status == request.status]
        wanted = page
        if request.request_ids is not None:
            wanted = [order for order in page if order.request_id in request.request_ids]
        return FutureOrdersPage(
            orders=wanted,
            listed=len(page),
            last=True,
            digest=page_digest([order.request_id for order in page]),
        )

    def _airalo_cancel(self, request: CancelFutureOrders) -> CancelFutureOrdersResult:
        """Airalo's 422: every ID it does not list is named and nothing is cancelled."""
        unknown = [i for i in request.request_ids if i not in self.future_orders]
        if unknown:
            rejections = [
                CancelRejection(
                    request_id=i,
                    kind=RejectionKind.NOT_FOUND,
                    message=f"Request ID: {i} does not exist",
                )
                for i in unknown
            ]
            return CancelFutureOrdersResult(request_ids=request.request_ids, rejections=rejections)
        for request_id_ in request.request_ids:
            del self.future_orders[request_id_]
        return CancelFutureOrdersResult(request_ids=request.request_ids)

    def _airalo_create(self, request: CreateFutureOrder) -> CreatedFutureOrder:
        created = request.order.model_copy(update={"request_id": request_id()})
        self.future_orders[created.request_id] = created
        return CreatedFutureOrder(
            original_request_id=request.order.request_id,
            request_id=created.request_id,
            due_date=created.due_date,
            latest_cancellation_date=created.latest_cancellation_date,
        )

    # -- the activities, registered under the production names ----------------------

    @activity.defn(name=StnActivity.SUBMIT_TERMINATION)
    async def stn_submit(self, request: SubmitTermination) -> SubmittedTermination:
        result: SubmittedTermination = await self._answer(StnActivity.SUBMIT_TERMINATION, request)
        return result

    @activity.defn(name=StnActivity.AWAIT_ACTIVATION_FINAL)
    async def stn_await_final(self, request: AwaitActivation) -> ActivationChecked:
        result: ActivationChecked = await self._answer(StnActivity.AWAIT_ACTIVATION_FINAL, request)
        return result

    @activity.defn(name=StnActivity.CANCEL_TERMINATION)
    async def stn_cancel(self, request: CancelTermination) -> Activation | None:
        result: Activation | None = await self._answer(StnActivity.CANCEL_TERMINATION, request)
        return result

    @activity.defn(name=StnActivity.GET_ACTIVATION)
    async def stn_get(self, request: AwaitActivation) -> Activation:
        result: Activation = await self._answer(StnActivity.GET_ACTIVATION, request)
        return result

    @activity.defn(name=RebillyActivity.PUT_CANCELLATION)
    async def rebilly_put(self, request: PutCancellation) -> PutResult:
        result: PutResult = await self._answer(RebillyActivity.PUT_CANCELLATION, request)
        return result

    @activity.defn(name=RebillyActivity.FIND_CANCELLATION)
    async def rebilly_find(self, request: CancellationRef) -> Cancellation | None:
        result: Cancellation | None = await self._answer(RebillyActivity.FIND_CANCELLATION, request)
        return result

    @activity.defn(name=RebillyActivity.AWAIT_CANCELLATION_COMPLETED)
    async def rebilly_await_completed(self, request: CancellationRef) -> CancellationChecked:
        result: CancellationChecked = await self._answer(
            RebillyActivity.AWAIT_CANCELLATION_COMPLETED, request
        )
        return result

    @activity.defn(name=RebillyActivity.REACTIVATE_ORDER)
    async def rebilly_reactivate(self, request: ReactivateOrder) -> Reactivated:
        result: Reactivated = await self._answer(RebillyActivity.REACTIVATE_ORDER, request)
        return result

    @activity.defn(name=RebillyActivity.DELETE_DRAFT)
    async def rebilly_delete_draft(self, request: CancellationRef) -> DraftDeleted:
        result: DraftDeleted = await self._answer(RebillyActivity.DELETE_DRAFT, request)
        return result

    @activity.defn(name=AiraloActivity.LIST_FUTURE_ORDERS)
    async def airalo_list(self, request: ListFutureOrders) -> FutureOrdersListed:
        result: FutureOrdersListed = await self._answer(AiraloActivity.LIST_FUTURE_ORDERS, request)
        return result

    @activity.defn(name=AiraloActivity.LIST_FUTURE_ORDERS_PAGE)
    async def airalo_list_page(self, request: ListFutureOrdersPage) -> FutureOrdersPage:
        result: FutureOrdersPage = await self._answer(
            AiraloActivity.LIST_FUTURE_ORDERS_PAGE, request
        )
        return result

    @activity.defn(name=AiraloActivity.CANCEL_FUTURE_ORDERS)
    async def airalo_cancel(self, request: CancelFutureOrders) -> CancelFutureOrdersResult:
        result: CancelFutureOrdersResult = await self._answer(
            AiraloActivity.CANCEL_FUTURE_ORDERS, request
        )
        return result

    @activity.defn(name=AiraloActivity.CREATE_FUTURE_ORDER)
    async def airalo_create(self, request: CreateFutureOrder) -> CreatedFutureOrder:
        result: CreatedFutureOrder = await self._answer(AiraloActivity.CREATE_FUTURE_ORDER, request)
        return result

    def activities(self) -> list[Callable[..., Awaitable[Any]]]:
        return [
            self.stn_submit,
            self.stn_await_final,
            self.stn_cancel,
            self.stn_get,
            self.rebilly_put,
            self.rebilly_find,
            self.rebilly_await_completed,
            self.rebilly_reactivate,
            self.rebilly_delete_draft,
            self.airalo_list,
            self.airalo_list_page,
            self.airalo_cancel,
            self.airalo_create,
        ]
