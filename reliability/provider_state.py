"""What the providers saw and what they hold: the sandbox's call log and final state.

The call log and the fault rules live in the sandbox's memory and start empty after
a restart; provider state survives it (``--state-file``). :class:`SandboxRecorder`
therefore owns every fault change and every sandbox restart: before a restart it
blocks every provider route (a refused request changes nothing), waits for the
requests in flight, and keeps the log and the fault counts of that *epoch*. The
final state is read from the state file after the sandbox has settled every
time-dependent status (sTN executions, Rebilly churns).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import TypeAdapter

from sandbox.airalo import FutureOrder
from sandbox.persistence import PersistedState
from sandbox.rebilly.model import Cancellation, Reactivation
from sandbox.settings import SandboxSettings
from sandbox.stn import TERMINATION, Activation
from sandbox.testing import SandboxAdmin

_STATE = TypeAdapter(PersistedState)
#: Latency faults hold a request this long at most; a block waits it out.
MAX_HELD_SECONDS = 8.0


@dataclass(frozen=True)
class Call:
    """One provider request as the sandbox logged it; ``epoch`` counts sandbox restarts."""

    epoch: int
    seq: int
    at: datetime
    provider: str
    method: str
    path: str
    status: int
    body: Any
    fault: str | None
    applied: bool

    @classmethod
    def from_log(cls, epoch: int, record: dict[str, Any]) -> Call:
        return cls(
            epoch=epoch,
            seq=record["seq"],
            at=datetime.fromisoformat(record["at"]),
            provider=record["provider"],
            method=record["method"],
            path=record["path"],
            status=record["status"],
            body=record["requestBody"],
            fault=record["fault"],
            applied=record["applied"],
        )

    @property
    def order(self) -> tuple[int, int]:
        return (self.epoch, self.seq)


class SandboxRecorder:
    """Faults in, call log and fault counts out, across sandbox restarts.

    The sandbox can only drop all its fault rules at once, so the recorder keeps the
    rules that should be active and puts them back after removing one, and after a
    sandbox restart.
    """

    def __init__(self, admin: SandboxAdmin) -> None:
        self.admin = admin
        self._epochs: list[list[Call]] = []
        self.fired: Counter[str] = Counter()
        #: handle -> (rule, takes precedence over the others, label)
        self._active: dict[int, tuple[dict[str, Any], bool, str | None]] = {}
        #: The sandbox's id of each rule now in force -> its label in the counts.
        self._labels: dict[str, str] = {}
        self._handles = itertools.count(1)

    async def add_fault(self, *, first: bool = False, label: str | None = None, **spec: Any) -> int:
        """Add a fault rule; returns a handle for :meth:`remove_fault`.

        The sandbox fires the first matching rule that wins its roll, and a latency or
        lost-response rule lets the request through: an outage rule must therefore come
        ``first``, before the background rules, or some requests slip past it.
        """
        handle = next(self._handles)
        self._active[handle] = (spec, first, label)
        if first:
            await self._reapply()
        else:
            await self._add(spec, label)
        return handle

    async def _add(self, spec: dict[str, Any], label: str | None) -> None:
        fault_id = await asyncio.to_thread(self.admin.add_fault, **spec)
        if label is not None:
            self._labels[fault_id] = label

    async def remove_fault(self, handle: int) -> None:
        self._active.pop(handle, None)
        await self._reapply()

    async def clear_faults(self) -> None:
        """Remove every rule, counting what they fired."""
        self._active.clear()
        await self._reapply()

    async def _reapply(self) -> None:
        await self._count_fired()
        await asyncio.to_thread(self.admin.clear_faults)
        await self.after_restart()

    async def _count_fired(self) -> None:
        for fault in await asyncio.to_thread(self.admin.faults):
            if fault["fired"]:
                self.fired[self._labels.get(fault["id"]) or _fault_label(fault)] += fault["fired"]

    async def block_and_rescue(self) -> None:
        """Before a sandbox restart: refuse every provider request, let those in flight
        finish, keep this epoch's log and counts."""
        await self._count_fired()
        await asyncio.to_thread(self.admin.clear_faults)
        await asyncio.to_thread(self.admin.add_fault, mode="error", status=503)
        await asyncio.sleep(MAX_HELD_SECONDS)
        await self._keep_epoch(blocked=True)

    async def after_restart(self) -> None:
        """A restarted (or cleared) sandbox has no rules: put the active ones back."""
        rules = sorted(self._active.values(), key=lambda rule: not rule[1])
        for spec, _first, label in rules:
            await self._add(spec, label)

    async def finish(self) -> list[Call]:
        """The whole call log (every epoch), once the run is over."""
        await self._count_fired()
        await asyncio.to_thread(self.admin.clear_faults)
        await self._keep_epoch(blocked=False)
        return [call for epoch in self._epochs for call in epoch]

    async def _keep_epoch(self, *, blocked: bool) -> None:
        records = await asyncio.to_thread(self.admin.calls)
        epoch = len(self._epochs)
        calls = [Call.from_log(epoch, record) for record in records]
        if blocked:
            # The block's own refusals count as outage, not as injected faults.
            blocked_ids = {fault["id"] for fault in await asyncio.to_thread(self.admin.faults)}
            self.fired["outage (503, all providers)"] += sum(c.fault in blocked_ids for c in calls)
        self._epochs.append(calls)


def _fault_label(fault: dict[str, Any]) -> str:
    where = fault.get("provider") or "every provider"
    mode = fault["mode"]
    if mode == "error":
        return f"{mode} {fault['status']} ({where})"
    if mode == "latency":
        return f"latency {fault['latencySeconds']:g} s ({where})"
    return f"{mode} ({where})"


@dataclass
class ProviderState:
    """The sandbox's final provider state and the whole call log, indexed for the checks."""

    calls: list[Call]
    activations: list[Activation]
    cancellations: list[Cancellation]
    reactivations: list[Reactivation]
    future_orders: dict[str, FutureOrder]
    terminations_by_line: dict[str, list[Activation]] = field(default_factory=dict)
    cancellations_of: dict[str, list[Activation]] = field(default_factory=dict)
    order_cancellations: dict[str, list[Cancellation]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        by_line: dict[str, list[Activation]] = defaultdict(list)
        cancels: dict[str, list[Activation]] = defaultdict(list)
        for activation in self.activations:
            if activation.kind == TERMINATION:
                by_line[activation.subscription_id].append(activation)
                if activation.phone_number:
                    by_line[f"phone:{activation.phone_number}"].append(activation)
            elif activation.target_id:
                cancels[activation.target_id].append(activation)
        by_order: dict[str, list[Cancellation]] = defaultdict(list)
        for cancellation in self.cancellations:
            by_order[cancellation.order_id].append(cancellation)
        self.terminations_by_line = dict(by_line)
        self.cancellations_of = dict(cancels)
        self.order_cancellations = dict(by_order)

    def calls_to(self, provider: str, method: str, path: str) -> list[Call]:
        return [c for c in self.calls if (c.provider, c.method, c.path) == (provider, method, path)]


async def read_provider_state(
    sandbox_url: str, state_file: Path, calls: list[Call]
) -> ProviderState:
    """Settle the sandbox (a read settles sTN, a tick Airalo and Rebilly), then read the
    state it saved. Call after :meth:`SandboxRecorder.finish`: these reads are not logged
    in what the checks see."""
    key = SandboxSettings().stn_api_key
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=60.0) as http:
        answer = await http.get(
            "/stn/api/QueryActivation", params={"take": 1}, headers={"stn-api-key": key}
        )
        answer.raise_for_status()
        (await http.post("/_sandbox/tick")).raise_for_status()
    state = _STATE.validate_json(await asyncio.to_thread(state_file.read_bytes))
    return ProviderState(
        calls=calls,
        activations=state.stn.activations,
        cancellations=state.rebilly.cancellations,
        reactivations=state.rebilly.reactivations,
        future_orders={order.request_id: order for order in state.airalo.future_orders},
    )
