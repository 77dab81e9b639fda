"""Delivery faults: make the sandbox duplicate, fail, drop or delay its own webhooks.

Matched when a webhook is emitted, in the order they were added; the first matching fault
with shots left (``count``, ``None`` = unlimited) applies to that webhook.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

DeliveryFaultMode = Literal["duplicate", "fail", "drop", "delay"]
WebhookProvider = Literal["airalo", "rebilly"]


class DeliveryFaultSpec(BaseModel):
    """Body of ``POST /_sandbox/webhooks/faults`` (camelCase or snake_case keys).

    ``duplicate``: deliver ``copies`` identical messages (each its own delivery record);
    ``fail``: the first ``failAttempts`` attempts (``None`` = all) fail without being sent;
    ``drop``: never send it (a lost webhook); ``delay``: send it ``delaySeconds`` later.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    provider: WebhookProvider | None = None
    #: Exact event name: ``future-order-fired``, ``subscription-canceled``, ...
    event: str | None = None
    mode: DeliveryFaultMode
    count: int | None = Field(default=None, ge=0)
    copies: int = Field(default=2, ge=2, le=10)
    fail_attempts: int | None = Field(default=None, ge=1)
    delay_seconds: float = Field(default=1.0, ge=0.0, le=300.0)


@dataclass
class DeliveryFault:
    id: str
    spec: DeliveryFaultSpec
    remaining: int | None
    fired: int = 0

    def matches(self, provider: str, event: str) -> bool:
        spec = self.spec
        return (
            (self.remaining is None or self.remaining > 0)
            and (spec.provider is None or spec.provider == provider)
            and (spec.event is None or spec.event == event)
        )

    def to_json(self) -> dict[str, Any]:
        spec = self.spec.model_dump(by_alias=True)
        return {"id": self.id, **spec, "remaining": self.remaining, "fired": self.fired}


class DeliveryFaultRegistry:
    """Not thread-safe by itself: the dispatcher calls it under its lock."""

    def __init__(self) -> None:
        self._faults: list[DeliveryFault] = []
        self._ids = itertools.count(1)

    def add(self, spec: DeliveryFaultSpec) -> DeliveryFault:
        fault = DeliveryFault(id=f"wf-{next(self._ids)}", spec=spec, remaining=spec.count)
        self._faults.append(fault)
        return fault

    def all(self) -> list[DeliveryFault]:
        return list(self._faults)

    def clear(self) -> None:
        self._faults.clear()

    def take(self, provider: str, event: str) -> DeliveryFault | None:
        """The first matching fault, with one shot used up."""
        for fault in self._faults:
            if fault.matches(provider, event):
                if fault.remaining is not None:
                    fault.remaining -= 1
                fault.fired += 1
                return fault
        return None
