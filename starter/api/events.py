"""CloudEvents 1.0 (structured mode) in, sagas out: the event-type table.

====================================== ======================== ==================================
CloudEvent ``type``                    saga                     ``data``
====================================== ======================== ==================================
``line.termination_requested``         LineTermination          ``TerminationRequest``
``billing.order_cancel_requested``     OrderCancellation        ``OrderCancellationRequest``
``esim.future_orders_cancel_requested`` FutureOrderCancellation ``FutureOrderCancellationRequest``
``customer.churned``                   CustomerChurn            ``CustomerChurnRequest``
====================================== ======================== ==================================

``data`` is exactly the body of that saga's start endpoint. The pair (``source``,
``id``) identifies the delivery: a redelivered event never starts a second saga.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.common import SagaKind
from starter.api.kinds import BY_KIND, SagaStarter

EVENT_TYPES: dict[str, SagaKind] = {
    "line.termination_requested": SagaKind.LINE_TERMINATION,
    "billing.order_cancel_requested": SagaKind.ORDER_CANCELLATION,
    "esim.future_orders_cancel_requested": SagaKind.FUTURE_ORDER_CANCELLATION,
    "customer.churned": SagaKind.CUSTOMER_CHURN,
}

#: Content types of a structured-mode CloudEvent we accept.
EVENT_CONTENT_TYPES = ("application/cloudevents+json", "application/json")


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 event in structured mode (attribute names as the spec has them).

    Extension attributes are allowed and ignored.
    """

    model_config = ConfigDict(extra="allow")

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=256)
    source: str = Field(min_length=1, max_length=1024)
    type: str = Field(min_length=1, max_length=256)
    data: dict[str, Any] = Field(
        description="The request body of the saga the event type names (see the table)"
    )
    datacontenttype: str | None = None
    dataschema: str | None = None
    subject: str | None = None
    time: str | None = None


def starter_for(event_type: str) -> SagaStarter | None:
    kind = EVENT_TYPES.get(event_type)
    return BY_KIND[kind] if kind is not None else None


def supported_types() -> str:
    return ", ".join(EVENT_TYPES)
