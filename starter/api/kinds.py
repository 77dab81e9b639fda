"""The saga kinds a caller can start, each with its request model, rules and starter.

One table for the start endpoints (``POST /v1/<path>``) and the CloudEvents intake
(:mod:`starter.api.events`), so both start a saga exactly as ``cancelctl`` does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel
from temporalio.client import Client

from config.settings import OrchestratorSettings
from domain.airalo import (
    FutureOrderCancellationRequest,
    future_order_cancellation_workflow_id,
    parse_future_order_cancellation_request,
)
from domain.churn import CustomerChurnRequest, churn_workflow_id, parse_customer_churn_request
from domain.common import SagaKind
from domain.rebilly import (
    OrderCancellationRequest,
    order_cancellation_workflow_id,
    parse_order_cancellation_request,
)
from domain.stn import TerminationRequest, parse_termination_request, termination_workflow_id
from starter import sagas


class StartSaga(Protocol):
    def __call__(
        self,
        client: Client,
        request: Any,
        settings: OrchestratorSettings,
        *,
        delivery: sagas.Delivery | None = ...,
    ) -> Awaitable[sagas.StartedSaga]: ...


@dataclass(frozen=True)
class SagaStarter:
    kind: SagaKind
    # The collection under /v1, e.g. "line-terminations".
    path: str
    model: type[BaseModel]
    # The domain's parse_* function: every broken rule as InvalidRequest. With the
    # clock (``now``) it applies the date rules; with None it skips them (to read a
    # request accepted earlier: see ``starter.api.starting``).
    parse: Callable[[Mapping[str, Any], datetime | None], BaseModel]
    start: StartSaga
    summary: str
    # The business key (workflow id) of a parsed request, as ``start`` makes it.
    workflow_id: Callable[[Any, OrchestratorSettings], str]


def _termination_workflow_id(request: TerminationRequest, settings: OrchestratorSettings) -> str:
    return termination_workflow_id(request, settings.workflow_id_key.get_secret_value().encode())


STARTERS: tuple[SagaStarter, ...] = (
    SagaStarter(
        SagaKind.LINE_TERMINATION,
        "line-terminations",
        TerminationRequest,
        parse_termination_request,
        sagas.start_line_termination,
        "Terminate an sTN mobile line (LineTermination)",
        _termination_workflow_id,
    ),
    SagaStarter(
        SagaKind.ORDER_CANCELLATION,
        "order-cancellations",
        OrderCancellationRequest,
        parse_order_cancellation_request,
        sagas.start_order_cancellation,
        "Cancel a Rebilly order (OrderCancellation)",
        lambda request, _settings: order_cancellation_workflow_id(request),
    ),
    SagaStarter(
        SagaKind.FUTURE_ORDER_CANCELLATION,
        "future-order-cancellations",
        FutureOrderCancellationRequest,
        lambda data, _now: parse_future_order_cancellation_request(data),
        sagas.start_future_order_cancellation,
        "Cancel Airalo future eSIM orders (FutureOrderCancellation)",
        lambda request, _settings: future_order_cancellation_workflow_id(request),
    ),
    SagaStarter(
        SagaKind.CUSTOMER_CHURN,
        "customer-churns",
        CustomerChurnRequest,
        parse_customer_churn_request,
        sagas.start_customer_churn,
        "A customer leaves: line, billing and eSIM orders together (CustomerChurn)",
        lambda request, _settings: churn_workflow_id(request),
    ),
)

BY_KIND: dict[SagaKind, SagaStarter] = {starter.kind: starter for starter in STARTERS}
