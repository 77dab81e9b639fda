"""The saga mix: what each scenario runs, how the sandbox is seeded for it, how it starts.

A :class:`SagaPlan` is one business request of one kind with the provider state it
needs (a line, an order, future eSIM orders) and what its operator will do to it
(revoke, reschedule) and the provider will answer (sTN ``ERROR``). Plans are drawn
from a seeded ``random.Random``, so ``--seed`` reproduces the workload; wish dates
are offsets from the moment the saga starts (a few seconds to a minute), so timers
fall due while the scenario's faults are active.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any

from pydantic import BaseModel
from temporalio.client import Client

from config.settings import OrchestratorSettings
from domain.airalo import FutureOrderCancellationRequest
from domain.churn import CustomerChurnRequest
from domain.common import SagaKind
from domain.rebilly import (
    CanceledBy,
    CancellationReason,
    OrderCancellationRequest,
)
from domain.stn import TerminationRequest
from sandbox.testing import SandboxAdmin
from starter import sagas
from starter.kinds import KINDS

AIRALO_ID_ALPHABET = string.ascii_letters + string.digits
AIRALO_ID_LENGTH = 25
STN_ERROR_MESSAGE = "number is ported out"
#: Future orders are due 3 to 6 days ahead: cancellable, and re-creatable ("from the
#: day after tomorrow") by a compensation.
ESIM_DUE_DAYS = (3.0, 6.0)

Mix = Mapping[SagaKind, float]
DEFAULT_MIX: Mix = {
    SagaKind.LINE_TERMINATION: 0.25,
    SagaKind.ORDER_CANCELLATION: 0.2,
    SagaKind.FUTURE_ORDER_CANCELLATION: 0.2,
    SagaKind.CUSTOMER_CHURN: 0.35,
}


@dataclass(frozen=True)
class Timing:
    """When sagas start (spread over ``start_window`` s) and how far ahead they wish."""

    start_window: float = 20.0
    wish_min: float = 4.0
    wish_max: float = 60.0
    #: Share of sagas with operator requests while they wait.
    revoke_share: float = 0.1
    reschedule_share: float = 0.1
    #: Share of lines sTN refuses (``ERROR``): LineTermination FAILED, churn COMPENSATED.
    stn_error_share: float = 0.12


@dataclass(frozen=True)
class EsimSeed:
    """One Airalo future order the sandbox holds before the saga starts."""

    request_id: str
    due: datetime
    description: str
    status: str = "pending"


@dataclass
class SagaPlan:
    """One business request and everything the invariants need to know about it."""

    index: int
    kind: SagaKind
    customer_id: str
    subscription_id: str | None = None
    phone: str | None = None
    order_id: str | None = None
    #: The request ids the saga is asked to cancel (seeded ones, plus unknown ones).
    esim_ids: list[str] = field(default_factory=list)
    esim_seeds: list[EsimSeed] = field(default_factory=list)
    #: Seconds from the start to the wish date; ``None``: as soon as possible.
    wish_offset: float | None = None
    stn_error: bool = False
    #: Seconds after the start at which the operator revokes / reschedules.
    revoke_at: float | None = None
    reschedule_at: float | None = None
    #: The new wish date, as seconds after the reschedule.
    reschedule_offset: float = 20.0
    #: Orders due just over 24 h ahead: their cut-off falls inside the run.
    deadline: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.kind.value.lower()} #{self.index}"

    def request(self, now: datetime) -> BaseModel:
        """The request as a caller sends it ``now`` (wish dates are relative)."""
        wish = None if self.wish_offset is None else _at(now, self.wish_offset)
        if self.kind == SagaKind.LINE_TERMINATION:
            return TerminationRequest(
                subscription_id=self.subscription_id,
                phone_number=self.phone,
                wish_date=wish,
                customer_id=self.customer_id,
            )
        if self.kind == SagaKind.ORDER_CANCELLATION:
            return self._order_request(wish, standalone=True)
        if self.kind == SagaKind.FUTURE_ORDER_CANCELLATION:
            return FutureOrderCancellationRequest(
                request_ids=self.esim_ids, customer_id=self.customer_id
            )
        assert wish is not None, "a churn has a date"
        return CustomerChurnRequest(
            customer_id=self.customer_id,
            wish_date=wish,
            stn=(
                TerminationRequest(subscription_id=self.subscription_id, phone_number=self.phone)
                if self.subscription_id or self.phone
                else None
            ),
            rebilly=self._order_request(None, standalone=False) if self.order_id else None,
            airalo=(
                FutureOrderCancellationRequest(request_ids=self.esim_ids) if self.esim_ids else None
            ),
        )

    def _order_request(
        self, churn: datetime | None, *, standalone: bool
    ) -> OrderCancellationRequest:
        assert self.order_id is not None
        return OrderCancellationRequest.model_validate(
            {
                "orderId": self.order_id,
                "churnTime": churn,
                "churnTimePolicy": "now" if standalone and churn is None else None,
                "reason": self.extra.get("reason", CancellationReason.OTHER),
                "canceledBy": self.extra.get("canceled_by", CanceledBy.CUSTOMER),
                "prorated": self.extra.get("prorated", False),
                "draft": standalone and self.extra.get("draft", False),
                "customerId": self.customer_id if standalone else None,
            }
        )

    def workflow_id(self, settings: OrchestratorSettings) -> str:
        """The business key (the request's workflow id; time plays no part in it)."""
        return workflow_id_of(self.request(datetime.now(UTC)), settings)


def workflow_id_of(request: BaseModel, settings: OrchestratorSettings) -> str:
    """The business key a request's saga runs under (its kind's, in ``starter.kinds``)."""
    return KINDS.for_request(request).workflow_id(request, settings)


def _at(now: datetime, offset: float) -> datetime:
    return (now + timedelta(seconds=offset)).replace(microsecond=0)


# -- drawing plans --------------------------------------------------------------------


class PlanFactory:
    """Draws plans with unique provider ids from one seeded ``Random``."""

    def __init__(self, rng: Random, tag: str, timing: Timing) -> None:
        self.rng = rng
        self.tag = tag
        self.timing = timing
        self._count = 0
        self._phones: set[str] = set()
        self._airalo_ids: set[str] = set()

    def draw(self, count: int, mix: Mix = DEFAULT_MIX) -> list[SagaPlan]:
        kinds = list(mix)
        weights = [mix[kind] for kind in kinds]
        return [self.plan(self.rng.choices(kinds, weights)[0]) for _ in range(count)]

    def plan(self, kind: SagaKind, **overrides: Any) -> SagaPlan:
        self._count += 1
        index = self._count
        plan = SagaPlan(index=index, kind=kind, customer_id=f"C-{self.tag}-{index}")
        build = {
            SagaKind.LINE_TERMINATION: self._line,
            SagaKind.ORDER_CANCELLATION: self._order,
            SagaKind.FUTURE_ORDER_CANCELLATION: self._esims,
            SagaKind.CUSTOMER_CHURN: self._churn,
        }[kind]
        build(plan)
        for name, value in overrides.items():
            setattr(plan, name, value)
        return plan

    def _wish(self) -> float:
        return round(self.rng.uniform(self.timing.wish_min, self.timing.wish_max), 1)

    def _operator(self, plan: SagaPlan) -> None:
        """A revoke or a reschedule while it waits, for some plans."""
        if plan.wish_offset is None or plan.wish_offset < 6:
            return
        roll = self.rng.random()
        at = round(self.rng.uniform(1.5, plan.wish_offset - 3), 1)
        if roll < self.timing.revoke_share:
            plan.revoke_at = at
        elif roll < self.timing.revoke_share + self.timing.reschedule_share:
            plan.reschedule_at = at
            plan.reschedule_offset = round(self.rng.uniform(5, 25), 1)

    def _line(self, plan: SagaPlan) -> None:
        if self.rng.random() < 0.2:
            plan.phone = self.phone()
        else:
            plan.subscription_id = f"SUB-{self.tag}-{plan.index}"
            plan.stn_error = self.rng.random() < self.timing.stn_error_share
        plan.wish_offset = None if self.rng.random() < 0.1 else self._wish()
        self._operator(plan)

    def _order(self, plan: SagaPlan) -> None:
        plan.order_id = f"ORD-{self.tag}-{plan.index}"
        plan.wish_offset = None if self.rng.random() < 0.1 else self._wish()
        plan.extra = {
            "reason": self.rng.choice(list(CancellationReason)),
            "canceled_by": self.rng.choice(list(CanceledBy)),
            "prorated": self.rng.random() < 0.5,
        }
        self._operator(plan)

    def _esims(self, plan: SagaPlan) -> None:
        count = self.rng.choice([1, 1, 2, 3, 5, 12])
        plan.esim_seeds = [self.esim(plan, n) for n in range(count)]
        if self.rng.random() < 0.1:  # Airalo fired it already: ALREADY_PROCESSED
            seed = plan.esim_seeds[0]
            plan.esim_seeds[0] = EsimSeed(seed.request_id, seed.due, seed.description, "processed")
        plan.esim_ids = [seed.request_id for seed in plan.esim_seeds]
        if self.rng.random() < 0.1:  # Airalo never heard of it: NOT_FOUND
            plan.esim_ids.append(self.airalo_id())

    def _churn(self, plan: SagaPlan) -> None:
        parts = self.rng.choice(
            [("stn", "rebilly", "airalo")] * 6
            + [("stn", "rebilly"), ("stn", "airalo"), ("rebilly", "airalo"), ("stn",)]
        )
        if "stn" in parts:
            plan.subscription_id = f"SUB-{self.tag}-{plan.index}"
            plan.stn_error = self.rng.random() < self.timing.stn_error_share
        if "rebilly" in parts:
            plan.order_id = f"ORD-{self.tag}-{plan.index}"
            plan.extra = {"reason": self.rng.choice(list(CancellationReason))}
        if "airalo" in parts:
            plan.esim_seeds = [self.esim(plan, n) for n in range(self.rng.choice([1, 2, 3]))]
            plan.esim_ids = [seed.request_id for seed in plan.esim_seeds]
        plan.wish_offset = max(6.0, self._wish())
        self._operator(plan)

    def esim(self, plan: SagaPlan, n: int, due: datetime | None = None) -> EsimSeed:
        if due is None:
            days = self.rng.uniform(*ESIM_DUE_DAYS)
            due = (datetime.now(UTC) + timedelta(days=days)).replace(second=0, microsecond=0)
        return EsimSeed(self.airalo_id(), due, f"esim {self.tag}-{plan.index}-{n}")

    def airalo_id(self) -> str:
        while True:
            candidate = "".join(self.rng.choices(AIRALO_ID_ALPHABET, k=AIRALO_ID_LENGTH))
            if candidate not in self._airalo_ids:
                self._airalo_ids.add(candidate)
                return candidate

    def phone(self) -> str:
        while True:
            candidate = "06" + "".join(self.rng.choices(string.digits, k=8))
            if candidate not in self._phones:
                self._phones.add(candidate)
                return candidate


# -- the sandbox before the run ---------------------------------------------------------


def package_of(tag: str) -> str:
    return f"pkg-{tag}"


def seed_sandbox(admin: SandboxAdmin, plans: list[SagaPlan], tag: str) -> None:
    """Give every plan the provider state it needs (synchronous: run it in a thread)."""
    renewal = datetime.now(UTC) + timedelta(days=20)
    for plan in plans:
        if plan.stn_error and plan.subscription_id:
            admin.stn_set_outcome(plan.subscription_id, "ERROR", STN_ERROR_MESSAGE)
        if plan.order_id:
            admin.rebilly_seed_order(plan.order_id, next_renewal_time=renewal, amount="29.99")
        for seed in plan.esim_seeds:
            admin.airalo_seed_future_order(
                package_of(tag),
                seed.due,
                request_id=seed.request_id,
                description=seed.description,
                status=None if seed.status == "pending" else seed.status,
            )


# -- starting ---------------------------------------------------------------------------


async def start(
    client: Client, plan: SagaPlan, settings: OrchestratorSettings, now: datetime | None = None
) -> sagas.StartedSaga:
    """Start the plan's saga through ``starter.sagas`` (what cancelctl and the API call)."""
    request = plan.request(now or datetime.now(UTC))
    return await sagas.start(client, plan.kind, request, settings)
