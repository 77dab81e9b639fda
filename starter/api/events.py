"""CloudEvents 1.0 (structured mode) in, sagas out: the event-type table.

====================================== ======================== ==================================
CloudEvent ``type``                    saga                     ``data``
====================================== ======================== ==================================
``line.termination_requested``         LineTermination          ``TerminationRequest``
``billing.order_cancel_requested``     OrderCancellation        ``OrderCancellationRequest``
``esim.future_orders_cancel_requested`` FutureOrderCancellation ``FutureOrderCancellationRequest``
``customer.churned``                   CustomerChurn            ``CustomerChurnRequest``
====================================== ======================== ==================================

The types are the ``event_type`` of each kind in :mod:`starter.kinds` (a test keeps
this table true to them). ``data`` is exactly the body of that saga's start endpoint.
The pair (``source``, ``id``) identifies the delivery: a redelivered event never
starts a second saga.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from starter.kinds import KINDS, SagaKindSpec

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


def kind_for(event_type: str) -> SagaKindSpec[Any] | None:
    """The saga kind an event of this type starts (None: not one we take)."""
    return KINDS.by_event_type(event_type)


def event_types() -> list[str]:
    """Every event type we take, in the registry's order."""
    return [spec.event_type for spec in KINDS]
