"""Recovery time: how long a saga took to move again after an outage ended.

Measured on the histories (the server's own event times), for every outage the
harness caused:

* **worker or server outage** (SIGKILL, then a new process): a run is *affected* if,
  when the outage began, it was open and had work due before the outage ended — a
  workflow task or an activity outstanding, or a timer falling due. Its recovery
  time is from the outage's end (the new worker process started / the restarted
  server accepting connections) to the run's first completed workflow task after it.
* **provider outage** (the sandbox killed, or a provider's routes refused for a
  while): a run is affected if, when the outage ended, an activity calling that
  provider was outstanding. Its recovery time is from the outage's end to that
  activity's close (completed, failed or timed out) in the history.

A run affected by several outages counts once per outage.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from reliability.harness import Outage
from reliability.observe import RunRecord, event_time

PROCESS_OUTAGES = frozenset({"worker", "server"})
#: Sandbox restarts take every provider down; a fault window names one.
ALL_PROVIDERS = ("stn", "rebilly", "airalo")

_ACTIVITY_CLOSED = frozenset(
    {
        EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
        EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
    }
)
_TASK_CLOSED = frozenset(
    {
        EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
        EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
    }
)


@dataclass(frozen=True)
class Recovery:
    """The recovery times of one scenario, in seconds."""

    samples: tuple[float, ...]

    @property
    def p50(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    @property
    def max(self) -> float | None:
        return max(self.samples) if self.samples else None


def _closing_id(event: HistoryEvent) -> int | None:
    """The scheduled event id an activity-closing event refers to."""
    for name in (
        "activity_task_completed_event_attributes",
        "activity_task_failed_event_attributes",
        "activity_task_timed_out_event_attributes",
        "activity_task_canceled_event_attributes",
    ):
        if event.HasField(name):
            return int(getattr(event, name).scheduled_event_id)
    return None


@dataclass(frozen=True)
class _Activity:
    scheduled: datetime
    closed: datetime | None
    provider: str


def _activities(events: list[HistoryEvent]) -> list[_Activity]:
    scheduled: dict[int, tuple[datetime, str]] = {}
    closed: dict[int, datetime] = {}
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[event.event_id] = (event_time(event), name.split(".", 1)[0])
        elif event.event_type in _ACTIVITY_CLOSED:
            closing = _closing_id(event)
            if closing is not None:
                closed[closing] = event_time(event)
    return [
        _Activity(at, closed.get(event_id), provider)
        for event_id, (at, provider) in scheduled.items()
    ]


def _work_due(events: list[HistoryEvent], start: datetime, end: datetime) -> bool:
    """Open at ``start`` with a task, an activity or a timer due before ``end``."""
    tasks_open = 0
    timers: dict[int, datetime] = {}
    for event in events:
        at = event_time(event)
        if at > start:
            break
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            tasks_open += 1
        elif kind in _TASK_CLOSED:
            tasks_open = max(0, tasks_open - 1)
        elif kind == EventType.EVENT_TYPE_TIMER_STARTED:
            timeout = event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
            timers[event.event_id] = at + timeout
        elif kind == EventType.EVENT_TYPE_TIMER_FIRED:
            timers.pop(event.timer_fired_event_attributes.started_event_id, None)
        elif kind == EventType.EVENT_TYPE_TIMER_CANCELED:
            timers.pop(event.timer_canceled_event_attributes.started_event_id, None)
    if tasks_open or any(due <= end for due in timers.values()):
        return True
    return any(
        a.scheduled <= start and (a.closed is None or a.closed > start) for a in _activities(events)
    )


def _open_at(run: RunRecord, moment: datetime) -> bool:
    return run.started <= moment and (run.closed is None or run.closed > moment)


def process_recovery(run: RunRecord, outage: Outage) -> float | None:
    assert outage.ended is not None
    if not _open_at(run, outage.started) or not _work_due(run.events, outage.started, outage.ended):
        return None
    for event in run.events:
        if (
            event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
            and event_time(event) > outage.ended
        ):
            return (event_time(event) - outage.ended).total_seconds()
    return None


def provider_recovery(run: RunRecord, outage: Outage, providers: Iterable[str]) -> float | None:
    assert outage.ended is not None
    wanted = set(providers)
    closes = [
        activity.closed
        for activity in _activities(run.events)
        if activity.provider in wanted
        and activity.scheduled <= outage.ended
        and activity.closed is not None
        and activity.closed > outage.ended
    ]
    if not closes:
        return None
    return (min(closes) - outage.ended).total_seconds()


def measure(runs: list[RunRecord], outages: list[Outage]) -> Recovery:
    samples: list[float] = []
    for outage in outages:
        if outage.ended is None:
            continue
        for run in runs:
            if outage.component in PROCESS_OUTAGES:
                sample = process_recovery(run, outage)
            else:
                providers = ALL_PROVIDERS if outage.component == "sandbox" else (outage.component,)
                sample = provider_recovery(run, outage, providers)
            if sample is not None:
                samples.append(sample)
    return Recovery(tuple(samples))


def timers_due_during(runs: list[RunRecord], outage: Outage) -> int:
    """How many durable timers fell due while ``outage`` lasted."""
    assert outage.ended is not None
    due = 0
    for run in runs:
        for event in run.events:
            if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
                timeout = event.timer_started_event_attributes.start_to_fire_timeout
                fires = event_time(event) + timeout.ToTimedelta()
                due += outage.started <= fires <= outage.ended
    return due
