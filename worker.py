"""The Temporal worker: every saga workflow and provider activity, one task queue.

Run it with ``python worker.py`` (``make run`` does). Connection comes from
Temporal's environment configuration (``TEMPORAL_ADDRESS``, ...); provider URLs
and keys from ``STN_*`` (see ``config/settings.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

from activities.provider_http import json_http_client
from activities.stn import StnActivities, stn_http_client
from config.settings import AiraloSettings, OrchestratorSettings, RebillySettings, StnSettings
from config.temporal import connect
from workflows.line_termination import LineTerminationSaga

WORKFLOWS: Sequence[type] = (LineTerminationSaga,)


@dataclass(frozen=True)
class ProviderClients:
    """One configured httpx client per provider, owned by the worker process."""

    stn: httpx.AsyncClient
    rebilly: httpx.AsyncClient
    airalo: httpx.AsyncClient


@dataclass(frozen=True)
class ProviderSettings:
    stn: StnSettings = field(default_factory=StnSettings)
    rebilly: RebillySettings = field(default_factory=RebillySettings)
    airalo: AiraloSettings = field(default_factory=AiraloSettings)


def activities_of(clients: ProviderClients) -> list[Any]:
    """Every activity, bound to the injected provider HTTP clients."""
    stn = StnActivities(clients.stn)
    return [stn.submit_termination, stn.await_activation_final, stn.cancel_termination]


@contextlib.asynccontextmanager
async def provider_clients(
    settings: ProviderSettings | None = None,
) -> AsyncIterator[ProviderClients]:
    settings = settings or ProviderSettings()
    async with (
        stn_http_client(settings.stn) as stn_http,
        json_http_client(settings.rebilly.base_url, settings.rebilly.timeout_seconds) as rebilly,
        json_http_client(settings.airalo.base_url, settings.airalo.timeout_seconds) as airalo,
    ):
        # Credentials are added by each provider's activities (Rebilly's key
        # header, Airalo's cached bearer token), never passed through workflows.
        yield ProviderClients(stn=stn_http, rebilly=rebilly, airalo=airalo)


def build_worker(client: Client, task_queue: str, clients: ProviderClients) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=activities_of(clients),
    )


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # httpx logs every request URL at INFO; sTN lookups carry phone numbers (PII).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = OrchestratorSettings()
    client = await connect()
    async with provider_clients() as clients:
        worker = build_worker(client, settings.task_queue, clients)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        logging.info("Worker polling task queue %r", settings.task_queue)
        async with worker:
            await stop.wait()
            logging.info("Shutting down: finishing in-flight tasks")


if __name__ == "__main__":
    asyncio.run(main())
