"""The provider activities' signatures: what workflows call, what the worker runs.

Workflows must not import the implementations (``activities/``: they hold httpx
clients), yet a call by name alone lets a wrong argument through unchecked. So
each provider's activities are declared here once, name and types, and workflow
code calls these declarations (``workflow.execute_activity_method``): mypy checks
every argument and result. The worker registers the implementations under the
same names; ``tests/test_activity_signatures.py`` holds each implementation to
its declaration.
"""

from __future__ import annotations

from temporalio import activity

from domain.airalo import (
    AiraloActivity,
    CancelFutureOrders,
    CancelFutureOrdersResult,
    CreatedFutureOrder,
    CreateFutureOrder,
    FutureOrdersListed,
    FutureOrdersPage,
    ListFutureOrders,
    ListFutureOrdersPage,
)
from domain.rebilly import (
    Cancellation,
    CancellationChecked,
    CancellationRef,
    DraftDeleted,
    PutCancellation,
    PutResult,
    Reactivated,
    ReactivateOrder,
    RebillyActivity,
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


class StnCalls:
    """sTN Partner API (implemented by ``activities.stn.StnActivities``)."""

    @activity.defn(name=StnActivity.SUBMIT_TERMINATION)
    async def submit_termination(self, request: SubmitTermination) -> SubmittedTermination:
        raise NotImplementedError

    @activity.defn(name=StnActivity.AWAIT_ACTIVATION_FINAL)
    async def await_activation_final(self, request: AwaitActivation) -> ActivationChecked:
        raise NotImplementedError

    @activity.defn(name=StnActivity.GET_ACTIVATION)
    async def get_activation(self, request: AwaitActivation) -> Activation:
        raise NotImplementedError

    @activity.defn(name=StnActivity.CANCEL_TERMINATION)
    async def cancel_termination(self, request: CancelTermination) -> Activation | None:
        raise NotImplementedError


class RebillyCalls:
    """Rebilly order cancellations (implemented by ``activities.rebilly.RebillyActivities``)."""

    @activity.defn(name=RebillyActivity.PUT_CANCELLATION)
    async def put_cancellation(self, request: PutCancellation) -> PutResult:
        raise NotImplementedError

    @activity.defn(name=RebillyActivity.FIND_CANCELLATION)
    async def find_cancellation(self, request: CancellationRef) -> Cancellation | None:
        raise NotImplementedError

    @activity.defn(name=RebillyActivity.AWAIT_CANCELLATION_COMPLETED)
    async def await_cancellation_completed(self, request: CancellationRef) -> CancellationChecked:
        raise NotImplementedError

    @activity.defn(name=RebillyActivity.REACTIVATE_ORDER)
    async def reactivate_order(self, request: ReactivateOrder) -> Reactivated:
        raise NotImplementedError

    @activity.defn(name=RebillyActivity.DELETE_DRAFT)
    async def delete_draft(self, request: CancellationRef) -> DraftDeleted:
        raise NotImplementedError


class AiraloCalls:
    """Airalo future orders (implemented by ``activities.airalo.AiraloActivities``)."""

    @activity.defn(name=AiraloActivity.LIST_FUTURE_ORDERS)
    async def list_future_orders(self, request: ListFutureOrders) -> FutureOrdersListed:
        raise NotImplementedError

    @activity.defn(name=AiraloActivity.LIST_FUTURE_ORDERS_PAGE)
    async def list_future_orders_page(self, request: ListFutureOrdersPage) -> FutureOrdersPage:
        raise NotImplementedError

    @activity.defn(name=AiraloActivity.CANCEL_FUTURE_ORDERS)
    async def cancel_future_orders(self, request: CancelFutureOrders) -> CancelFutureOrdersResult:
        raise NotImplementedError

    @activity.defn(name=AiraloActivity.CREATE_FUTURE_ORDER)
    async def create_future_order(self, request: CreateFutureOrder) -> CreatedFutureOrder:
        raise NotImplementedError
