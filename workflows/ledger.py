"""The saga's own account of itself: phase, audit trail, last error.

Every phase change is written three ways at once, so they can never disagree:
the ``status`` query's step list, the ``CancellationStatus`` search attribute
(what operators filter on in the UI) and the run's current details (what the UI
shows on the run's page). Whoever must react to it (the steering loop, the saga
metrics, the outcome events) is a :class:`LedgerWatcher`, told of every change as it
is made. A part racing a deadline declares it (:meth:`SagaLedger.deadline`); the
outcome events turn it into a jeopardy timer (``workflows/outcome_events.py``).

Search attributes are published **once per workflow task** (patch
:data:`workflows.patches.ONE_UPSERT_PER_TASK`): the changes a task's code makes are
merged into one upsert, sent once that code has run. An immediate termination used
to upsert five times (RECEIVED, SUBMITTING, WAITING, POLLING, COMPLETED) in three
tasks, three now; each upsert is a history event and a visibility write on the
server (docs/performance.md, section 1). What no longer appears are values that
lived within one task (RECEIVED, then SUBMITTING, at the same instant); the step
list still records every phase. A final phase is upserted at once: the run may
complete in the same step, and the upsert must come before its completion.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

from workflows import patches

with workflow.unsafe.imports_passed_through():
    from domain import search_attributes as sa
    from domain.common import SagaPhase, StepRecord
    from domain.outcomes import Jeopardy, JeopardyCause


class LedgerWatcher:
    """Told of what a saga's ledger records, as it records it (the defaults ignore it)."""

    def phase_changed(self, previous: SagaPhase, phase: SagaPhase) -> None:
        """The saga entered ``phase`` (possibly again) from ``previous``."""

    def undo_failed(self) -> None:
        """A compensation could not undo something, whatever phase the saga ends in."""

    def deadline_set(
        self, cause: JeopardyCause, at: datetime, still: Callable[[], bool], detail: str
    ) -> None:
        """A part must meet a deadline: the saga is in jeopardy from ``at`` while
        ``still()`` (see :meth:`SagaLedger.deadline`)."""


class SagaLedger:
    """``kind``: the ``CancellationKind`` (a ``SagaKind`` value, or a new kind's name);
    ``providers``: the ``Provider`` values (or a new provider's name) it calls."""

    def __init__(self, kind: str, providers: Sequence[str]) -> None:
        self.kind = kind
        self.providers = list(providers)
        self.phase = SagaPhase.RECEIVED
        self.steps: list[StepRecord] = []
        self.last_error: str | None = None
        #: Deadlines the saga neared without meeting them (``saga.jeopardy``).
        self.jeopardy: list[Jeopardy] = []
        self._watchers: list[LedgerWatcher] = []
        # Set in open(): merge the search-attribute changes of a task into one upsert.
        self._per_task = False
        self._unpublished: dict[str, SearchAttributeUpdate[Any]] = {}

    def open(self, wish_date: datetime | None, customer_id: str | None) -> None:
        """Publish the search attributes a new run starts with."""
        self._per_task = patches.current()
        updates: list[SearchAttributeUpdate[Any]] = [
            sa.CANCELLATION_KIND.value_set(str(self.kind)),
            sa.CANCELLATION_PROVIDERS.value_set([str(p) for p in self.providers]),
            sa.CANCELLATION_STATUS.value_set(self.phase.value),
            sa.WISH_DATE.value_set(wish_date or workflow.now()),
        ]
        if customer_id:
            updates.append(sa.CUSTOMER_ID.value_set(customer_id))
        self._publish(updates)
        self.record("received", f"{self.kind} saga started")

    def watch(self, watcher: LedgerWatcher) -> None:
        self._watchers.append(watcher)

    def record(self, step: str, detail: str = "") -> None:
        self.steps.append(StepRecord(at=workflow.now(), step=step, detail=detail))

    def enter(self, phase: SagaPhase, detail: str) -> None:
        previous, self.phase = self.phase, phase
        self.record(phase.value.lower(), detail)
        self._publish([sa.CANCELLATION_STATUS.value_set(phase.value)], now=phase.is_final)
        workflow.set_current_details(f"**{phase.value}**: {detail}")
        for watcher in self._watchers:
            watcher.phase_changed(previous, phase)

    def fail(self, phase: SagaPhase, error: str) -> None:
        self.last_error = error
        self.enter(phase, error)

    def note_error(self, step: str, error: str) -> None:
        """An error the saga survived (e.g. a refused revoke): recorded, phase kept."""
        self.last_error = error
        self.record(step, error)

    def note_undo_failure(self, step: str, error: str) -> None:
        """A compensation that could not undo something, although the saga ends in
        a phase that does not say so (a revoke whose re-creations partly failed)."""
        self.note_error(step, error)
        for watcher in self._watchers:
            watcher.undo_failed()

    def deadline(
        self, cause: JeopardyCause, at: datetime, still: Callable[[], bool], detail: str
    ) -> None:
        """A part must meet a deadline: from ``at`` on, while ``still()`` holds (and the
        saga is not final), the saga is in jeopardy for ``cause``. Declaring it again
        with another ``at`` moves it."""
        for watcher in self._watchers:
            watcher.deadline_set(cause, at, still, detail)

    def in_jeopardy(self, cause: JeopardyCause, detail: str) -> None:
        """Shown in the status and the ``SagaJeopardy`` search attribute."""
        self.jeopardy.append(Jeopardy(cause=cause, at=workflow.now(), detail=detail))
        self.record("jeopardy", f"{cause}: {detail}")
        self._publish_jeopardy()

    def out_of_jeopardy(self, cause: JeopardyCause) -> None:
        """The cause no longer applies (the saga moved on): cleared from the attribute."""
        for jeopardy in self.jeopardy:
            if jeopardy.cause == cause and jeopardy.cleared_at is None:
                jeopardy.cleared_at = workflow.now()
        self._publish_jeopardy()

    def _publish_jeopardy(self) -> None:
        causes = sorted({str(j.cause) for j in self.jeopardy if j.cleared_at is None})
        self._publish(
            [sa.SAGA_JEOPARDY.value_set(causes) if causes else sa.SAGA_JEOPARDY.value_unset()]
        )

    def move_wish_date(self, wish_date: datetime) -> None:
        self._publish([sa.WISH_DATE.value_set(wish_date)])

    def _publish(self, updates: list[SearchAttributeUpdate[Any]], *, now: bool = False) -> None:
        """Upsert ``updates`` at the end of this task's code (or ``now``), merged with
        any others of the same task, the latest value of each attribute winning."""
        if not self._per_task:
            workflow.upsert_search_attributes(updates)
            return
        scheduled = bool(self._unpublished)
        self._unpublished.update({update.key.name: update for update in updates})
        if now:
            self._flush()
        elif not scheduled:
            # Runs after every step already ready in this task: the workflow event
            # loop is deterministic, so replay merges the same changes at the same point.
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        if self._unpublished:
            workflow.upsert_search_attributes(list(self._unpublished.values()))
            self._unpublished.clear()


def describe_failure(error: BaseException) -> str:
    """The most specific message in a failure chain (the provider's words, if any)."""
    message = str(error)
    cause: BaseException | None = error
    while cause is not None:
        if str(cause):
            message = str(cause)
        cause = cause.__cause__
    return message
