"""A provider part: one provider's workflow-side behaviour, the one place it lives.

Each provider has one part class (:mod:`workflows.stn_line`,
:mod:`workflows.rebilly_billing`, :mod:`workflows.airalo_orders`): it calls its
provider's effects (through its ``*_steps`` module), learns what the provider did,
polls it, undoes it, finishes it and reports its state. A single-provider saga is
its part composed with the steering kernel (``workflows.steering``); a composition
of several parts around a pivot (``workflows.pivot_composition``, the customer
churn) drives every part through :class:`ProviderPart`:

* :meth:`~ProviderPart.prepare` — before the pivot, make the part end at the date;
* :meth:`~ProviderPart.reschedule` — move a prepared part to a new date;
* :meth:`~ProviderPart.undo` — compensation; :class:`StepFailed` when it cannot;
* :meth:`~ProviderPart.finish` — after the pivot (forward recovery only);
* :meth:`~ProviderPart.on_notice` — a provider webhook about what it holds;
* :meth:`~ProviderPart.state` — its part of the ``status`` query.

A fourth provider adds one part class (``docs/adding-a-provider.md``).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.common import ProviderNotice

from workflows.ledger import SagaLedger


class StepFailed(Exception):
    """A compensation or post-pivot step that failed permanently (kept as pending)."""


class TooLate(StepFailed):
    """The provider already carried the thing out: nothing can undo it any more.

    A single-provider saga reports the provider's outcome instead; a composition
    keeps it as a pending action like any other failed undo.
    """


class ProviderPart:
    """What a composition asks of every provider part (the defaults do nothing).

    ``name`` is the provider (``Provider`` value, or a new provider's name): the
    key of its pending actions and of its field in the composition's status.
    """

    name: str

    def __init__(self, ledger: SagaLedger) -> None:
        self._ledger = ledger

    async def prepare(self, wish_date: datetime) -> None:
        """Before the pivot: make the part end at ``wish_date``."""

    async def reschedule(self, wish_date: datetime) -> None:
        """Move the prepared part to ``wish_date`` (an ActivityError unwinds the saga)."""

    def reschedule_refusal(self, old: datetime, new: datetime) -> str | None:
        """Why this part cannot move from ``old`` to ``new``, if it cannot."""
        return None

    def stop(self, cause: str) -> None:
        """Compensation starts while :meth:`prepare` runs: wind it down."""

    async def undo(self, cause: str) -> None:
        """Undo what :meth:`prepare` did; :class:`StepFailed` when it cannot."""

    async def finish(self) -> None:
        """After the pivot; :class:`StepFailed` when it cannot."""

    def finish_description(self) -> str:
        return f"finish the {self.name} part"

    def on_notice(self, notice: ProviderNotice) -> None:
        """A provider's webhook routed to the saga (recorded once already): what it
        changes in what the part knows, never a call."""

    def state(self) -> BaseModel | None:
        return None
