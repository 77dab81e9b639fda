"""The API's one Temporal client, connected lazily and with a deadline.

The API starts and answers ``/healthz`` without Temporal; a request that needs
Temporal while it is unreachable gets 503 with ``Retry-After``, never a hang.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio.client import Client

from config.temporal import connect


class TemporalUnavailable(Exception):
    pass


class TemporalGateway:
    def __init__(
        self, timeout_seconds: float, connector: Callable[[], Awaitable[Client]] = connect
    ) -> None:
        self._timeout = timeout_seconds
        self._connector = connector
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await asyncio.wait_for(self._connector(), self._timeout)
                except Exception as error:  # the SDK raises plain RuntimeError
                    raise TemporalUnavailable(f"cannot reach Temporal: {error}") from error
            return self._client

    async def ready(self) -> bool:
        """Temporal answers a health check within the timeout."""
        try:
            client = await self.client()
            return await asyncio.wait_for(
                client.service_client.check_health(timeout=timedelta(seconds=self._timeout)),
                self._timeout,
            )
        except Exception:
            return False
