"""Fault injection rules, matched against every provider request by the gateway."""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from sandbox.errors import ProviderName

FaultMode = Literal["error", "rate_limit", "drop_response", "latency"]


class FaultSpec(BaseModel):
    """Body of ``POST /_sandbox/faults`` (camelCase or snake_case keys)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    provider: ProviderName | None = None
    method: str | None = None
    #: Regular expression, ``re.fullmatch``-ed against the path relative to the provider.
    path: str | None = None
    mode: FaultMode
    status: int = Field(default=503, ge=400, le=599)
    #: How many times the fault fires; ``None`` = unlimited.
    count: int | None = Field(default=None, ge=0)
    #: Probability that a matching request triggers the fault (seeded RNG).
    rate: float = Field(default=1.0, ge=0.0, le=1.0)
    retry_after_seconds: float = Field(default=1.0, ge=0.0)
    latency_seconds: float = Field(default=0.5, ge=0.0)
    #: ``error`` mode only: answer this JSON body instead of the provider's error shape
    #: (e.g. Airalo's business error ``{"code": 13, "reason": "..."}``).
    body: dict[str, Any] | list[Any] | None = None

    @field_validator("path")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from exc
        return value

    @field_validator("method")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.upper() if value is not None else None


@dataclass
class Fault:
    id: str
    spec: FaultSpec
    remaining: int | None
    fired: int = 0

    @property
    def active(self) -> bool:
        return self.remaining is None or self.remaining > 0

    def matches(self, provider: str, method: str, path: str) -> bool:
        spec = self.spec
        return (
            self.active
            and (spec.provider is None or spec.provider == provider)
            and (spec.method is None or spec.method == method.upper())
            and (spec.path is None or re.fullmatch(spec.path, path) is not None)
        )

    def fire(self) -> None:
        self.fired += 1
        if self.remaining is not None:
            self.remaining -= 1

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            **self.spec.model_dump(by_alias=True),
            "remaining": self.remaining,
            "fired": self.fired,
        }


class FaultRegistry:
    """Ordered fault rules; the first matching active rule that passes its dice roll fires."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, spec: FaultSpec) -> Fault:
        fault = Fault(id=f"fault-{next(self._ids)}", spec=spec, remaining=spec.count)
        self._faults.append(fault)
        return fault

    def all(self) -> list[Fault]:
        return list(self._faults)

    def clear(self) -> None:
        # Ids keep counting so that old call-log entries never point at a new fault.
        self._faults.clear()

    def take(self, provider: str, method: str, path: str, rng: random.Random) -> Fault | None:
        """Pick the fault for this request and consume one of its shots.

        Synchronous on purpose: matching and consuming happen without an ``await`` in
        between, so concurrent requests cannot both take a fault's last shot.
        """
        for fault in self._faults:
            if not fault.matches(provider, method, path):
                continue
            if fault.spec.rate < 1.0 and rng.random() >= fault.spec.rate:
                continue
            fault.fire()
            return fault
        return None
