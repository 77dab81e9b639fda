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
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

from activities.stn import StnActivities, stn_http_client
from config.settings import OrchestratorSettings, StnSettings
from config.temporal import connect
from workflows.line_termination import LineTerminationSaga

WORKFLOWS: Sequence[type] = (LineTerminationSaga,)


def activities_of(stn_http: httpx.AsyncClient) -> list[Any]:
    """Every activity, bound to the injected provider HTTP clients."""
    stn = StnActivities(stn_http)
    return [stn.submit_termination, stn.await_activation_final, stn.cancel_termination]


@contextlib.asynccontextmanager
async def provider_clients(stn: StnSettings | None = None) -> AsyncIterator[httpx.AsyncClient]:
    async with stn_http_client(stn or StnSettings()) as stn_http:
        yield stn_http


def build_worker(client: Client, task_queue: str, stn_http: httpx.AsyncClient) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=activities_of(stn_http),
    )


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = OrchestratorSettings()
    client = await connect()
    async with provider_clients() as stn_http:
        worker = build_worker(client, settings.task_queue, stn_http)
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
