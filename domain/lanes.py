"""Provider lanes: each provider's calls on a task queue of its own, deadlines first.

A lane is a provider's activity task queue, named after the saga's task queue and the
provider (``cancellations-stn``): the server enforces each lane's rate limit
(``CANCEL_<PROVIDER>_MAX_CALLS_PER_SECOND``, or ``cancelctl lanes set``) on its own,
so one provider's burst never queues another provider's calls. Within a lane, tasks
are handed out by Temporal's task-queue priority (:class:`Urgency`): a call racing a
deadline goes before an operator's request, which goes before routine work, which
goes before a wave's polls.

Pure code, shared by workflows (which lane and priority a call takes), the worker
(which queues it polls) and ``cancelctl lanes`` / ``GET /v1/lanes``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from enum import IntEnum

#: An activity's name starts with its provider: ``stn.submit_termination``.
ACTIVITY_PROVIDER_SEPARATOR = "."

#: The first poll after a wish date is spread over the time the lane needs for a wave
#: of this many first polls at its limit ...
WAVE_FOR_SPREAD = 10_000
#: ... but never longer than this: the provider already holds the effect with its date,
#: only the saga's observation of it moves. A lane without a limit takes a wave as it
#: comes: no spread.
MAX_OBSERVATION_SPREAD = timedelta(minutes=15)
#: The run's memo entry (set at its start, ``starter/lanes.py``): lane → spread in seconds.
MEMO_OBSERVATION_SPREAD = "observationSpreadSeconds"
#: A call for an order whose provider cut-off is closer than this is a deadline call.
DEADLINE_HORIZON = timedelta(hours=6)
#: A submit for a date further ahead than this is bulk work (month-end files).
FAR_AHEAD = timedelta(days=1)


class Urgency(IntEnum):
    """A call's place in its lane: Temporal's ``priority_key`` (1 first; 3 by default)."""

    #: Racing a provider's deadline (an Airalo cancellation near its cut-off).
    DEADLINE = 1
    #: An operator's request or a compensation: someone (or something owed) waits on it.
    UNDO = 2
    ROUTINE = 3
    #: Bulk work nobody waits on: a wave's polls, a submit for a date far ahead.
    BULK = 4


def before_deadline(deadline: datetime | None, now: datetime) -> Urgency:
    """A call that must reach the provider before ``deadline`` (a cut-off): a deadline
    call once that is within :data:`DEADLINE_HORIZON`, routine before."""
    if deadline is not None and deadline - now < DEADLINE_HORIZON:
        return Urgency.DEADLINE
    return Urgency.ROUTINE


def for_date(when: datetime | None, now: datetime) -> Urgency:
    """A call that sets up an effect for ``when``: bulk when that is far ahead."""
    if when is not None and when - now > FAR_AHEAD:
        return Urgency.BULK
    return Urgency.ROUTINE


def lane_queue(task_queue: str, provider: str) -> str:
    """The task queue of ``provider``'s lane for sagas on ``task_queue``."""
    return f"{task_queue}-{provider}"


def provider_of(activity_name: str) -> str:
    """The provider (and so the lane) an activity belongs to, from its name."""
    provider, separator, _ = activity_name.partition(ACTIVITY_PROVIDER_SEPARATOR)
    if not separator or not provider:
        raise ValueError(f"activity {activity_name!r} does not name its provider (provider.call)")
    return provider


def observation_spread(calls_per_second: float | None) -> timedelta:
    """The window over which a wave's first polls after their wish date are spread.

    The time the lane needs for :data:`WAVE_FOR_SPREAD` first polls at its limit, at
    most :data:`MAX_OBSERVATION_SPREAD`; none for a lane without a limit.
    """
    if calls_per_second is None:
        return timedelta(0)
    return min(MAX_OBSERVATION_SPREAD, timedelta(seconds=WAVE_FOR_SPREAD / calls_per_second))


def observation_delay(workflow_id: str, spread: timedelta) -> timedelta:
    """This saga's place in the spread: the same for the same workflow id, uniform over
    the window across ids (a hash, so replay and every worker agree)."""
    if spread <= timedelta(0):
        return timedelta(0)
    digest = hashlib.sha256(workflow_id.encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return timedelta(milliseconds=int(spread.total_seconds() * 1000 * fraction))
