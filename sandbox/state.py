"""The in-memory state of one sandbox app (stored on ``app.state.sandbox``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from fastapi import FastAPI

from sandbox.airalo import AiraloStore
from sandbox.calls import CallLog
from sandbox.common import SandboxContext
from sandbox.faults import FaultRegistry
from sandbox.rebilly import RebillyStore
from sandbox.stn import StnStore
from sandbox.subscriber import Subscribers
from sandbox.webhooks import Dispatcher, Outbox


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
    webhooks: Dispatcher
    #: The outcome-event subscriber endpoints (``sandbox/subscriber.py``).
    subscribers: Subscribers = field(default_factory=Subscribers)

    @classmethod
    def create(cls, context: SandboxContext) -> Sandbox:
        """The stores report firings and subscription events to the webhook outbox."""
        webhooks = Dispatcher(context)
        outbox = Outbox(context, webhooks)
        airalo = AiraloStore(context)
        airalo.on_fired = outbox.airalo_order_fired
        return cls(
            context=context,
            calls=CallLog(),
            faults=FaultRegistry(),
            stn=StnStore(context),
            rebilly=RebillyStore(context, on_event=outbox.rebilly_event),
            airalo=airalo,
            webhooks=webhooks,
        )

    def reset(self) -> None:
        """Forget all provider state, faults, calls, webhook deliveries and delivery faults.
        Settings and clock are kept."""
        self.calls.clear()
        self.faults.clear()
        self.context.reseed()
        # The outcome subscribers are not provider state: each is reset by its own name
        # (``DELETE /_sandbox/subscribers/<name>``), so a benchmark's reset keeps them.
        stores: tuple[Resettable, ...] = (self.stn, self.rebilly, self.airalo, self.webhooks)
        for store in stores:
            store.reset()

    def tick(self) -> None:
        """Evaluate the time-dependent statuses that send webhooks (Airalo firing, Rebilly
        churn) now instead of on the next read. Runs on the event loop like the handlers."""
        self.airalo.tick()
        self.rebilly.tick()


def get_sandbox(app: FastAPI) -> Sandbox:
    """The state of an app made by :func:`sandbox.app.create_app`."""
    sandbox = app.state.sandbox
    if not isinstance(sandbox, Sandbox):
        raise TypeError("not a sandbox app")
    return sandbox
