"""Slowing down *before* a provider's quota runs out, instead of after its 429.

A provider that announces its quota on each answer (``X-RateLimit-Limit`` and
``X-RateLimit-Remaining``; Rebilly does on every successful write) lets a client see a
429 coming. :class:`RateLimitPacer` reads both headers off every answer and, while the
quota is low, spaces the next requests out. The 429 path stays as it was: a refusal is
retried after the provider's ``Retry-After`` / ``X-RateLimit-Retry-After``
(:mod:`activities.provider_http`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from temporalio import activity

LIMIT_HEADER = "X-RateLimit-Limit"
REMAINING_HEADER = "X-RateLimit-Remaining"
READS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class _Quota:
    """The last quota a provider announced for one class of requests."""

    limit: int
    remaining: int
    # When the last request of this class was let through (the pacer's clock).
    last_sent: float = float("-inf")


class RateLimitPacer:
    """Spaces a provider's requests while the quota it announced is low.

    Quotas are kept per class, reads (GET, HEAD, OPTIONS) and writes (every other
    method), because providers meter them apart (Rebilly's documented sandbox limit is
    for "non-GET endpoints") and may announce only one (Rebilly: writes).

    While the last answer of a class left fewer than ``slow_below * limit`` tokens,
    each request of that class waits until

        interval = max_wait * (1 - remaining / (slow_below * limit))

    has passed since the previous request of the class was let through: nothing at
    the threshold, ``max_wait`` with nothing left, in between in proportion.

    **Bounded:** a request never waits more than ``max_wait`` seconds, however many
    run at once; so a burst of concurrent requests is spread over at most
    ``max_wait``, and may still reach the limit (its 429 is then retried after the
    provider's own wait). ``max_wait`` 0 turns pacing off. An answer without both
    headers as integers changes nothing; the next answer with more tokens left ends
    the slowdown at once. One pacer per client, so per worker process: it cannot
    know what other processes spend of the same quota.
    """

    def __init__(
        self,
        *,
        slow_below: float = 0.1,
        max_wait: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.slow_below = slow_below
        self.max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._quotas: dict[bool, _Quota] = {}

    @staticmethod
    def _is_write(request: httpx.Request) -> bool:
        return request.method.upper() not in READS

    def delay(self, request: httpx.Request) -> float:
        """Seconds ``request`` waits before it is sent, and let it through (reserves
        its slot at once, so concurrent requests queue behind one another)."""
        quota = self._quotas.get(self._is_write(request))
        now = self._clock()
        if quota is None or self.max_wait <= 0:
            return 0.0
        threshold = self.slow_below * quota.limit
        if quota.remaining >= threshold:
            quota.last_sent = now
            return 0.0
        interval = self.max_wait * (1 - max(quota.remaining, 0) / threshold)
        wait = min(max(quota.last_sent + interval - now, 0.0), self.max_wait)
        quota.last_sent = now + wait
        return wait

    async def wait(self, request: httpx.Request) -> None:
        """Wait what :meth:`delay` says before ``request`` is sent."""
        seconds = self.delay(request)
        if seconds <= 0:
            return
        if activity.in_activity():
            quota = self._quotas[self._is_write(request)]
            activity.logger.info(
                "Provider quota low (%d of %d left): waiting %.2fs before %s",
                quota.remaining,
                quota.limit,
                seconds,
                request.method,
            )
        await self._sleep(seconds)

    def observe(self, request: httpx.Request, response: httpx.Response) -> None:
        """Remember the quota ``response`` announced for ``request``'s class."""
        try:
            limit = int(response.headers[LIMIT_HEADER])
            remaining = int(response.headers[REMAINING_HEADER])
        except (KeyError, ValueError):
            return
        if limit <= 0:
            return
        write = self._is_write(request)
        known = self._quotas.get(write)
        last_sent = known.last_sent if known is not None else float("-inf")
        self._quotas[write] = _Quota(limit, remaining, last_sent)
