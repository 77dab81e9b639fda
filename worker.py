"""The Temporal worker: every saga workflow and provider activity, one task queue.

Run it with ``python worker.py`` (``make run`` does). Connection comes from
Temporal's environment configuration (``TEMPORAL_ADDRESS``, ...); provider URLs
and keys from ``STN_*``, ``REBILLY_*``, ``AIRALO_*`` (see ``config/settings.py``).
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

from activities.heartbeat import HeartbeatingActivities
from activities.airalo import AiraloActivities, AiraloTokens
from activities.provider_http import json_http_client
from activities.rebilly import RebillyActivities, rebilly_http_client
from activities.stn import StnActivities, stn_http_client
from config.settings import AiraloSettings, OrchestratorSettings, RebillySettings, StnSettings
from config.temporal import connect
from workflows.customer_churn import CustomerChurnSaga
from workflows.future_order_cancellation import FutureOrderCancellationSaga
from workflows.line_termination import LineTerminationSaga
from workflows.order_cancellation import OrderCancellationSaga

WORKFLOWS: Sequence[type] = (
    LineTerminationSaga,
    OrderCancellationSaga,
    FutureOrderCancellationSaga,
    CustomerChurnSaga,
)


@dataclass(frozen=True)
class ProviderClients:
    """One configured httpx client per provider, owned by the worker process."""

    stn: httpx.AsyncClient
    rebilly: httpx.AsyncClient
    airalo: httpx.AsyncClient
    # Airalo's bearer token, cached for the worker's lifetime (never per call).
    airalo_tokens: AiraloTokens
    # ``webhook_url`` sent when a future order is re-created (AIRALO_WEBHOOK_URL).
    airalo_webhook_url: str | None = None


@dataclass(frozen=True)
class ProviderSettings:
    stn: StnSettings = field(default_factory=StnSettings)
    rebilly: RebillySettings = field(default_factory=RebillySettings)
    airalo: AiraloSettings = field(default_factory=AiraloSettings)


def activities_of(clients: ProviderClients) -> list[Any]:
    """Every activity, bound to the injected provider HTTP clients."""
    stn = StnActivities(clients.stn)
    rebilly = RebillyActivities(clients.rebilly)
    airalo = AiraloActivities(clients.airalo, clients.airalo_tokens, clients.airalo_webhook_url)
    return [
        stn.submit_termination,
        stn.await_activation_final,
        stn.cancel_termination,
        stn.get_activation,
        rebilly.put_cancellation,
        rebilly.find_cancellation,
        rebilly.await_cancellation_completed,
        rebilly.reactivate_order,
        rebilly.delete_draft,
        airalo.list_future_orders,
        airalo.cancel_future_orders,
        airalo.create_future_order,
    ]


@contextlib.asynccontextmanager
async def provider_clients(
    settings: ProviderSettings | None = None,
) -> AsyncIterator[ProviderClients]:
    settings = settings or ProviderSettings()
    async with (
        stn_http_client(settings.stn) as stn_http,
        rebilly_http_client(settings.rebilly) as rebilly,
        json_http_client(settings.airalo.api_root, settings.airalo.timeout_seconds) as airalo,
    ):
        # Credentials live in these clients (sTN's and Rebilly's key headers) or
        # in the activities (Airalo's cached bearer token), never in workflows.
        yield ProviderClients(
            stn=stn_http,
            rebilly=rebilly,
            airalo=airalo,
            airalo_tokens=AiraloTokens.from_settings(airalo, settings.airalo),
            airalo_webhook_url=settings.airalo.webhook_url,
        )


def build_worker(client: Client, task_queue: str, clients: ProviderClients) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=activities_of(clients),
        interceptors=[HeartbeatingActivities()],
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
