"""What falls due: running sagas per provider per hour or day (``cancelctl upcoming``,
``GET /v1/forecast``), and the buckets a provider's lane cannot drain in time.

Counted from visibility (eventually consistent: a saga started or rescheduled a moment
ago may be counted a moment later): one count per bucket and provider of the running
sagas whose ``WishDate`` falls in it. A bucket is flagged when its sagas need more
calls than the provider's lane hands out in the bucket's time at its limit (each saga
polls its provider at least once after its date; ``domain/lanes.py``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import Field, ValidationError
from temporalio.client import Client

from domain import search_attributes as sa
from domain.common import (
    CamelModel,
    InvalidRequest,
    Provider,
    problems_from_validation_error,
)
from starter import lanes

BUCKETS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
#: Count queries in flight at once (visibility's own rate limit is the server's).
CONCURRENT_COUNTS = 8


class ForecastRequest(CamelModel):
    days: int = Field(default=7, ge=1, le=31)
    by: Literal["hour", "day"] = "day"
    provider: Provider | None = None

    @classmethod
    def of(cls, **given: object) -> ForecastRequest:
        """Validated (``InvalidRequest`` naming each field), from what the caller gave."""
        try:
            return cls.model_validate({k: v for k, v in given.items() if v is not None})
        except ValidationError as error:
            raise InvalidRequest(problems_from_validation_error(error)) from None


class DueBucket(CamelModel):
    provider: str
    start: datetime
    end: datetime
    due: int
    # Calls the provider's lane hands out in the bucket at its limit (None: no limit).
    capacity: int | None
    # More sagas fall due than the lane can take in the bucket's time.
    exceeds_lane: bool


class Forecast(CamelModel):
    generated_at: datetime
    by: Literal["hour", "day"]
    buckets: list[DueBucket]


def _query(task_queue: str, provider: str, start: datetime, end: datetime) -> str:
    return (
        f"{sa.CANCELLATION_KIND.name} IS NOT NULL AND ExecutionStatus = 'Running' AND "
        f"TaskQueue = '{task_queue}' AND "
        f"{sa.CANCELLATION_PROVIDERS.name} = '{provider}' AND "
        f"{sa.WISH_DATE.name} >= '{_iso(start)}' AND {sa.WISH_DATE.name} < '{_iso(end)}'"
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _first_bucket(now: datetime, size: timedelta) -> datetime:
    start = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return start.replace(hour=0) if size == BUCKETS["day"] else start


async def forecast(client: Client, task_queue: str, asked: ForecastRequest) -> Forecast:
    size = BUCKETS[asked.by]
    now = datetime.now(UTC)
    first = _first_bucket(now, size)
    count = int(timedelta(days=asked.days) / size)
    starts = [first + size * n for n in range(count)]
    providers = [asked.provider.value] if asked.provider else list(lanes.PROVIDERS)
    limits = {
        lane.provider: lane.limit_per_second
        for lane in await lanes.describe_lanes(client, task_queue, providers)
    }
    gate = asyncio.Semaphore(CONCURRENT_COUNTS)

    async def bucket(provider: str, start: datetime) -> DueBucket:
        async with gate:
            query = _query(task_queue, provider, start, start + size)
            due = (await client.count_workflows(query)).count
        limit = limits.get(provider)
        capacity = None if limit is None else int(limit * size.total_seconds())
        return DueBucket(
            provider=provider,
            start=start,
            end=start + size,
            due=due,
            capacity=capacity,
            exceeds_lane=capacity is not None and due > capacity,
        )

    buckets = await asyncio.gather(
        *(bucket(provider, start) for provider in providers for start in starts)
    )
    return Forecast(generated_at=now, by=asked.by, buckets=list(buckets))


async def due_within(client: Client, task_queue: str, provider: str, within: timedelta) -> int:
    """Running sagas of ``provider`` due between now and ``within`` (the dashboards' gauge)."""
    now = datetime.now(UTC)
    return (await client.count_workflows(_query(task_queue, provider, now, now + within))).count
