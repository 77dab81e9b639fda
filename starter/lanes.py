"""Provider lanes as an operator sees and steers them (``cancelctl lanes``, ``GET /v1/lanes``).

A lane is a provider's task queue (``domain/lanes.py``). Temporal knows its state:
the limit in force and where it comes from (``cancelctl lanes set``, i.e. the task
queue's configuration; else the workers' ``CANCEL_<PROVIDER>_MAX_CALLS_PER_SECOND``;
else none), the calls waiting and how long the oldest has waited. A limit set here
overrides the workers' for every worker at once, without a restart, until reset.

Starting a saga also reads the lanes' limits (:func:`observation_spreads`, cached for a
minute per process): a wave's first polls after its wish date are spread over the time
the slowest of its lanes needs for them, and that window is fixed in the run's memo.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from pydantic import Field
from temporalio.api.enums.v1 import RateLimitSource, TaskQueueType
from temporalio.api.taskqueue.v1 import RateLimit, TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    DescribeTaskQueueResponse,
    UpdateTaskQueueConfigRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError

from domain.common import CamelModel, FieldProblem, InvalidRequest, Provider
from domain.lanes import lane_queue, observation_spread

log = logging.getLogger(__name__)

#: The lanes of the product's providers.
PROVIDERS: tuple[str, ...] = tuple(provider.value for provider in Provider)
#: How long a process trusts the lanes' limits it read, to size a new saga's spread.
SPREAD_CACHE_SECONDS = 60.0
IDENTITY = "cancelctl lanes"

_SOURCES = {
    RateLimitSource.RATE_LIMIT_SOURCE_API: "cancelctl lanes set",
    RateLimitSource.RATE_LIMIT_SOURCE_WORKER: "worker setting",
}


class LaneState(CamelModel):
    """One provider lane, as Temporal reports it."""

    provider: str
    task_queue: str
    # Calls per second the server hands out, for all workers together; None: no limit.
    limit_per_second: float | None
    # "cancelctl lanes set", "worker setting" or "none".
    limit_source: str
    # Calls waiting for a worker, and how long the oldest of them has waited.
    backlog: int
    oldest_waiting_seconds: float
    added_per_second: float
    dispatched_per_second: float
    # Workers polling the lane right now (none: its calls wait).
    pollers: int
    # The window a wave's first polls on this lane are spread over (domain/lanes.py).
    observation_spread_seconds: float = Field(ge=0)


def check_provider(provider: str) -> None:
    if provider not in PROVIDERS:
        raise InvalidRequest(
            [FieldProblem(field="provider", rule=f"must be one of {', '.join(PROVIDERS)}")]
        )


def check_limit(calls_per_second: float) -> None:
    if not 0 < calls_per_second <= 100_000:
        raise InvalidRequest(
            [
                FieldProblem(
                    field="maxCallsPerSecond",
                    rule="must be a number of calls per second above 0 (at most 100000)",
                )
            ]
        )


async def _describe(client: Client, queue: str) -> DescribeTaskQueueResponse:
    return await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            report_stats=True,
            report_config=True,
        )
    )


def _limit(described: DescribeTaskQueueResponse) -> tuple[float | None, str]:
    effective = described.effective_rate_limit
    source = _SOURCES.get(effective.rate_limit_source)
    if source is None:
        return None, "none"  # the server's own default: no limit of ours
    return effective.requests_per_second, source


async def describe_lane(client: Client, task_queue: str, provider: str) -> LaneState:
    queue = lane_queue(task_queue, provider)
    described = await _describe(client, queue)
    limit, source = _limit(described)
    stats = described.stats
    return LaneState(
        provider=provider,
        task_queue=queue,
        limit_per_second=limit,
        limit_source=source,
        backlog=stats.approximate_backlog_count,
        oldest_waiting_seconds=stats.approximate_backlog_age.ToTimedelta().total_seconds(),
        added_per_second=stats.tasks_add_rate,
        dispatched_per_second=stats.tasks_dispatch_rate,
        pollers=len(described.pollers),
        observation_spread_seconds=observation_spread(limit).total_seconds(),
    )


async def describe_lanes(
    client: Client, task_queue: str, providers: Iterable[str] = PROVIDERS
) -> list[LaneState]:
    return [await describe_lane(client, task_queue, provider) for provider in providers]


async def set_lane_limit(
    client: Client,
    task_queue: str,
    provider: str,
    calls_per_second: float | None,
    reason: str | None = None,
) -> LaneState:
    """Set (or, with ``None``, remove) the lane's limit for every worker at once.

    Removing it restores the workers' own setting, if they have one.
    """
    check_provider(provider)
    if calls_per_second is not None:
        check_limit(calls_per_second)
    update = UpdateTaskQueueConfigRequest.RateLimitUpdate(
        reason=reason or ("set" if calls_per_second is not None else "reset") + " by cancelctl"
    )
    if calls_per_second is not None:
        update.rate_limit.CopyFrom(RateLimit(requests_per_second=calls_per_second))
    await client.workflow_service.update_task_queue_config(
        UpdateTaskQueueConfigRequest(
            namespace=client.namespace,
            identity=IDENTITY,
            task_queue=lane_queue(task_queue, provider),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            update_queue_rate_limit=update,
        )
    )
    _spreads.clear()
    return await describe_lane(client, task_queue, provider)


# -- the spread of a new saga's first poll ------------------------------------------------

_spreads: dict[str, tuple[float, dict[str, float]]] = {}


async def observation_spreads(client: Client, task_queue: str) -> dict[str, float]:
    """Each lane's spread in seconds, for a saga started now (read at most once a minute).

    A lane Temporal cannot describe right now gets none: a start never waits on this.
    """
    cached = _spreads.get(task_queue)
    now = time.monotonic()
    if cached is not None and now - cached[0] < SPREAD_CACHE_SECONDS:
        return cached[1]
    spreads: dict[str, float] = {}
    for provider in PROVIDERS:
        try:
            limit, _ = _limit(await _describe(client, lane_queue(task_queue, provider)))
        except RPCError as error:
            log.warning("could not read the %s lane's limit: %s", provider, error)
            continue
        seconds = observation_spread(limit).total_seconds()
        if seconds > 0:
            spreads[provider] = seconds
    _spreads[task_queue] = (now, spreads)
    return spreads
