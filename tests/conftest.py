"""Real parts: one Temporal dev server and one provider sandbox per test session,
a fresh task queue and worker per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from config.settings import AiraloSettings, OrchestratorSettings, RebillySettings, StnSettings
from config.temporal import data_converter
from config.temporal_cli import ensure_temporal_cli
from domain import search_attributes as sa
from sandbox.settings import SandboxSettings
from sandbox.testing import SandboxAdmin, SandboxServer
from worker import ProviderSettings, build_worker, provider_clients


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    # Every test's worker fetches its own Airalo token: lift the sandbox's token
    # rate limit for the session (tests/sandbox checks the limit itself).
    settings = SandboxSettings(
        stn_processing_delay_seconds=1.0, airalo_token_rate_limit_per_minute=1000
    )
    with SandboxServer(settings) as server:
        yield server


@pytest.fixture
def sandbox_admin(sandbox: SandboxServer) -> Iterator[SandboxAdmin]:
    admin = SandboxAdmin(sandbox.base_url)
    yield admin
    admin.clear_faults()
    admin.close()


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(ensure_temporal_cli()),
        search_attributes=sa.ALL,
        data_converter=data_converter(),
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


@pytest.fixture
def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture
def task_queue() -> str:
    return f"test-{uuid.uuid4()}"


@pytest.fixture
def settings(task_queue: str) -> OrchestratorSettings:
    return OrchestratorSettings(task_queue=task_queue)


def provider_settings_for(sandbox: SandboxServer) -> ProviderSettings:
    """Production settings classes, pointed at the test sandbox."""
    return ProviderSettings(
        stn=StnSettings(base_url=sandbox.stn_url),
        rebilly=RebillySettings(base_url=sandbox.rebilly_url),
        airalo=AiraloSettings(base_url=sandbox.airalo_url),
    )


@pytest.fixture
async def worker(client: Client, sandbox: SandboxServer, task_queue: str) -> AsyncIterator[Worker]:
    """The production worker (same workflows, activities, options) on a fresh queue."""
    async with (
        provider_clients(provider_settings_for(sandbox)) as clients,
        build_worker(client, task_queue, clients) as running,
    ):
        yield running


@pytest.fixture
def uid() -> str:
    """A unique suffix so tests never share provider state or workflow ids."""
    return uuid.uuid4().hex[:10]
