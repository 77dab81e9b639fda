"""The in-memory state of one sandbox app (stored on ``app.state.sandbox``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from fastapi import FastAPI

from sandbox.airalo import AiraloStore
from sandbox.calls import CallLog
from sandbox.common import SandboxContext
from sandbox.faults import FaultRegistry
from sandbox.rebilly import RebillyStore
from sandbox.stn import StnStore


class Resettable(Protocol):
    def reset(self) -> None: ...


@dataclass
class Sandbox:
    """Everything one app instance owns. No module globals: two apps never share state.

    All handlers are ``async`` and mutate state only in synchronous sections (after the
    request body has been awaited), so the single event loop serialises every mutation.
    """

    context: SandboxContext
    calls: CallLog
    faults: FaultRegistry
    stn: StnStore
    rebilly: RebillyStore
    airalo: AiraloStore

    @classmethod
    def create(cls, context: SandboxContext) -> Sandbox:
        return cls(
            context=context,
            calls=CallLog(),
            faults=FaultRegistry(),
            stn=StnStore(context),
            rebilly=RebillyStore(context),
            airalo=AiraloStore(context),
        )

    def reset(self) -> None:
        """Forget all provider state, faults and calls. Settings and clock are kept."""
        self.calls.clear()
        self.faults.clear()
        self.context.reseed()
        stores: tuple[Resettable, ...] = (self.stn, self.rebilly, self.airalo)
        for store in stores:
            store.reset()


def get_sandbox(app: FastAPI) -> Sandbox:
    """The state of an app made by :func:`sandbox.app.create_app`."""
    sandbox = app.state.sandbox
    if not isinstance(sandbox, Sandbox):
        raise TypeError("not a sandbox app")
    return sandbox
