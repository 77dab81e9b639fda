"""A saga's outcome events: what it tells its subscribers, and its jeopardy timers.

:class:`OutcomeEvents` is one more :class:`~workflows.ledger.LedgerWatcher` (beside the
steering loop and the saga metrics): it turns the ledger's phase changes, and what the
steering kernel tells it (:meth:`~OutcomeEvents.scheduled`,
:meth:`~OutcomeEvents.point_of_no_return`), into CloudEvents (``domain/outcomes.py``).

When each type is emitted (README "Outcome events"):

* ``saga.scheduled``: the provider holds the effect for a date still ahead (an sTN
  termination accepted, a confirmed Rebilly cancellation, every churn part prepared);
  never for an immediate effect, a Rebilly draft or FutureOrderCancellation (which
  has no ``WAITING`` phase). ``saga.rescheduled``: held for another date after that.
* ``saga.completed`` / ``.failed`` / ``.revoked`` / ``.compensated``: the final phase,
  once. ``saga.needs_attention``: each arrival in ``NEEDS_ATTENTION``.
* ``saga.point_of_no_return``: the churn's line is terminated (the pivot passed).
* ``saga.jeopardy``: once per cause (:class:`~domain.outcomes.JeopardyCause`), when a
  deadline a part declared (:meth:`~workflows.ledger.SagaLedger.deadline`), or a stay in
  ``NEEDS_ATTENTION``, outlasts its horizon.

Publishing never fails the saga nor makes it wait on a subscriber for long: each event
goes to the local activity ``outcomes.publish`` as a background task (its first POST
bounded by ``CANCEL_WEBHOOK_INLINE_TIMEOUT_SECONDS``, ``activities/outcomes.py``);
:meth:`settle` waits for those only when the run closes, and a publish that still
fails after its retries is logged and counted (``cancel_outcome_publish_failures_total``),
never raised. Event ids come from
``workflow.uuid4()``, so a replay makes the same ids. All of it only in runs that carry
the ``outcome-events`` patch generation: runs from before emit nothing and start no timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as ActivityTimeout

with workflow.unsafe.imports_passed_through():
    from domain import outcomes
    from domain.common import SagaPhase
    from domain.outcomes import (
        FINAL_EVENTS,
        PUBLISH_ACTIVITY,
        JeopardyCause,
        OutcomeEvent,
        OutcomeEventType,
        PublishRequest,
        PublishResult,
        event_id,
    )

from workflows import patches
from workflows.ledger import LedgerWatcher, SagaLedger

#: The publish local activity: a cached store read, a first POST of at most 5 s
#: (``CANCEL_WEBHOOK_INLINE_TIMEOUT_SECONDS``), a signal or a workflow start.
PUBLISH_TIMEOUT = timedelta(seconds=10)
#: Retried this long (with backoff), then given up: logged and counted, never raised.
PUBLISH_DEADLINE = timedelta(minutes=2)
PUBLISH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=15),
)

EVENTS_EMITTED = "cancel_outcome_events_total"
PUBLISH_FAILURES = "cancel_outcome_publish_failures_total"
JEOPARDY_EMITTED = "cancel_sagas_in_jeopardy_total"
_DESCRIPTIONS = {
    EVENTS_EMITTED: "Outcome events the sagas emitted, by kind and type",
    PUBLISH_FAILURES: "Outcome events that could not be handed to their subscriptions",
    JEOPARDY_EMITTED: "Sagas that went into jeopardy, by kind and cause",
}


class OutcomeEvents(LedgerWatcher):
    """One saga's outcome events (see the module docstring)."""

    def __init__(self, ledger: SagaLedger, status: Callable[[], Any] | None = None) -> None:
        self._ledger = ledger
        self._status = status
        self._enabled: bool | None = None
        self._sequence = 0
        self._publishes: list[asyncio.Task[None]] = []
        self._watches: dict[JeopardyCause, tuple[datetime, asyncio.Task[None]]] = {}
        self._in_jeopardy_for: set[JeopardyCause] = set()
        self._scheduled_for: datetime | None = None
        self._final_emitted = False
        self._pivot_emitted = False
        ledger.watch(self)

    @property
    def enabled(self) -> bool:
        """Whether this run emits events: asked at the first event, after the run opened
        (runs before the ``outcome-events`` generation replay false)."""
        if self._enabled is None:
            self._enabled = workflow.in_workflow() and patches.patched(patches.OUTCOME_EVENTS)
        return self._enabled

    # -- what the ledger and the steering kernel tell ------------------------------------

    def phase_changed(self, previous: SagaPhase, phase: SagaPhase) -> None:
        if phase == SagaPhase.NEEDS_ATTENTION and previous != SagaPhase.NEEDS_ATTENTION:
            self._emit(OutcomeEventType.NEEDS_ATTENTION)
            self.deadline_set(
                JeopardyCause.NEEDS_ATTENTION,
                workflow.now() + outcomes.NEEDS_ATTENTION_HORIZON,
                lambda: self._ledger.phase == SagaPhase.NEEDS_ATTENTION,
                f"waiting for an operator for more than {outcomes.NEEDS_ATTENTION_HORIZON}",
            )
        elif phase.is_final and not self._final_emitted:
            self._final_emitted = True
            self._emit(FINAL_EVENTS[phase.value])

    def scheduled(self, effective: datetime) -> None:
        """The provider holds the effect for ``effective``: ``saga.scheduled`` the first
        time, ``saga.rescheduled`` when the date moved; nothing for a date not ahead."""
        if effective <= workflow.now() or effective == self._scheduled_for:
            return
        first = self._scheduled_for is None
        self._scheduled_for = effective
        kind = OutcomeEventType.SCHEDULED if first else OutcomeEventType.RESCHEDULED
        # Every provider here can undo its effect until it executes it on that date.
        self._emit(kind, {"revocableUntil": effective.isoformat()})

    def point_of_no_return(self) -> None:
        """The churn's pivot passed: the rest will be finished, not undone (once)."""
        if not self._pivot_emitted:
            self._pivot_emitted = True
            self._emit(OutcomeEventType.POINT_OF_NO_RETURN)

    def deadline_set(
        self, cause: JeopardyCause, at: datetime, still: Callable[[], bool], detail: str
    ) -> None:
        if cause in self._in_jeopardy_for or not self.enabled:
            return
        watching = self._watches.get(cause)
        if watching is not None and not watching[1].done():
            if watching[0] == at:
                return
            watching[1].cancel()  # moved (a rescheduled termination)
        task = asyncio.ensure_future(self._watch(cause, at, still, detail))
        self._watches[cause] = (at, task)

    # -- the run's end -------------------------------------------------------------------

    async def settle(self) -> None:
        """No jeopardy timer left; every event handed to its subscriptions (or given up)."""
        for _, watch in self._watches.values():
            watch.cancel()
        pending = [task for task in self._publishes if not task.done()]
        if pending:
            await asyncio.shield(asyncio.gather(*pending))

    # -- inside ----------------------------------------------------------------------------

    async def _watch(
        self, cause: JeopardyCause, at: datetime, still: Callable[[], bool], detail: str
    ) -> None:
        """A durable timer to ``at``, cancelled as soon as the cause stops applying."""

        def applies() -> bool:
            return not self._ledger.phase.is_final and still()

        remaining = at - workflow.now()
        if remaining > timedelta(0):
            try:
                await workflow.wait_condition(lambda: not applies(), timeout=remaining)
                return  # met in time, or the saga moved on
            except TimeoutError:
                pass
        if not applies():
            return
        self._in_jeopardy_for.add(cause)
        self._ledger.in_jeopardy(cause, detail)
        self._count(JEOPARDY_EMITTED, {"cause": str(cause)})
        self._emit(OutcomeEventType.JEOPARDY, {"jeopardyCause": str(cause)})
        await workflow.wait_condition(lambda: not applies())
        if not self._ledger.phase.is_final:
            self._ledger.out_of_jeopardy(cause)

    def _emit(self, event_type: OutcomeEventType, extra: dict[str, Any] | None = None) -> None:
        if not self.enabled:
            return
        self._sequence += 1
        info = workflow.info()
        status = self._status() if self._status is not None else None
        data: dict[str, Any] = (
            status.model_dump(mode="json", by_alias=True)
            if isinstance(status, BaseModel)
            else {"workflowId": info.workflow_id, "phase": self._ledger.phase.value}
        )
        data.update(kind=str(self._ledger.kind), sequence=self._sequence, **(extra or {}))
        event = OutcomeEvent(
            id=event_id(workflow.uuid4().hex),
            type=event_type,
            subject=info.workflow_id,
            time=workflow.now(),
            data=data,
        )
        customer = data.get("customerId")
        request = PublishRequest(
            event=event,
            kind=str(self._ledger.kind),
            customer_id=customer if isinstance(customer, str) else None,
            task_queue=info.task_queue,
        )
        self._count(EVENTS_EMITTED, {"type": str(event_type)})
        self._publishes.append(asyncio.ensure_future(self._publish(request)))

    async def _publish(self, request: PublishRequest) -> None:
        try:
            await workflow.execute_local_activity(
                PUBLISH_ACTIVITY,
                request,
                result_type=PublishResult,
                start_to_close_timeout=PUBLISH_TIMEOUT,
                schedule_to_close_timeout=PUBLISH_DEADLINE,
                retry_policy=PUBLISH_RETRY,
            )
        except (ActivityError, ApplicationError, ActivityTimeout) as error:
            # A failed local activity raises its own error, not an ActivityError; runs
            # from before this was caught failed here (patches.PUBLISH_FAILURE_COUNTED).
            if not isinstance(error, ActivityError) and not patches.patched(
                patches.PUBLISH_FAILURE_COUNTED
            ):
                raise
            workflow.logger.warning(
                "outcome event %s (%s) not published: %s",
                request.event.id,
                request.event.type,
                error.cause or error,
            )
            self._count(PUBLISH_FAILURES, {"type": str(request.event.type)})

    def _count(self, name: str, labels: dict[str, str]) -> None:
        workflow.metric_meter().create_counter(name, _DESCRIPTIONS[name]).add(
            1, {"kind": str(self._ledger.kind), **labels}
        )
