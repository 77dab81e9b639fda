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
from domain.airalo import FutureOrderCancellationRequest, parse_future_order_cancellation_request
from domain.churn import CustomerChurnRequest, parse_customer_churn_request
from domain.common import SagaKind
from domain.rebilly import OrderCancellationRequest, parse_order_cancellation_request
from domain.stn import TerminationRequest, parse_termination_request
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
    # The domain's parse_* function: every broken rule as InvalidRequest.
    parse: Callable[[Mapping[str, Any], datetime], BaseModel]
    start: StartSaga
    summary: str


STARTERS: tuple[SagaStarter, ...] = (
    SagaStarter(
        SagaKind.LINE_TERMINATION,
        "line-terminations",
        TerminationRequest,
        parse_termination_request,
        sagas.start_line_termination,
        "Terminate an sTN mobile line (LineTermination)",
    ),
    SagaStarter(
        SagaKind.ORDER_CANCELLATION,
        "order-cancellations",
        OrderCancellationRequest,
        parse_order_cancellation_request,
        sagas.start_order_cancellation,
        "Cancel a Rebilly order (OrderCancellation)",
    ),
    SagaStarter(
        SagaKind.FUTURE_ORDER_CANCELLATION,
        "future-order-cancellations",
        FutureOrderCancellationRequest,
        lambda data, _now: parse_future_order_cancellation_request(data),
        sagas.start_future_order_cancellation,
        "Cancel Airalo future eSIM orders (FutureOrderCancellation)",
    ),
    SagaStarter(
        SagaKind.CUSTOMER_CHURN,
        "customer-churns",
        CustomerChurnRequest,
        parse_customer_churn_request,
        sagas.start_customer_churn,
        "A customer leaves: line, billing and eSIM orders together (CustomerChurn)",
    ),
)

BY_KIND: dict[SagaKind, SagaStarter] = {starter.kind: starter for starter in STARTERS}
