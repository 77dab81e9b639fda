"""Real parts: one Temporal dev server and one provider sandbox per test run,
a fresh task queue and worker per test.

Serial run (``pytest``): the session fixtures start the dev server and the sandbox.
Parallel run (``pytest -n N``, pytest-xdist): the controller process starts them once
(:func:`pytest_configure`) and exports their addresses in ``CO_TEST_*`` variables;
the N worker processes inherit those and connect instead of starting their own. So
every worker shares ONE dev server and ONE sandbox; tests keep apart by their fresh
task queue and ``uid``.

What a shared sandbox cannot give: a test that changes sandbox-wide state (a fault,
a setting, revoking every token) or counts the whole call log would disturb, or be
disturbed by, the tests running beside it. Such a test is marked
``@pytest.mark.own_sandbox`` and gets a private sandbox for its duration (served from
the test's own process; the ``sandbox``, ``sandbox_admin`` and ``worker`` fixtures all
point at it), in serial and parallel runs alike. On the shared sandbox, ``sandbox_admin``
refuses such changes, so a test that forgets the marker fails loudly instead of
flaking its neighbours.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Protocol

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from config.settings import AiraloSettings, OrchestratorSettings, RebillySettings, StnSettings
from config.temporal import data_converter
from config.temporal_cli import dev_server_config_flags, ensure_temporal_cli
from domain import search_attributes as sa
from domain.common import Provider
from sandbox.settings import SandboxSettings
from sandbox.testing import SandboxAdmin, SandboxServer
from worker import ProductWorkers, ProviderSettings, build_worker, provider_clients

# Payload encryption on, as in production, with fixed test keys set before any fixture
# runs: xdist workers, the API processes and cancelctl inherit them. The current key
# encrypts; the older one stays listed, as a previous key does after a rotation. Never
# change these values: histories recorded with RECORD_HISTORIES=1 are encrypted with them.
TEST_CODEC_KEYS = {
    "tests-2026-a": "dGVzdHMtMjAyNi1hOiBub3QgYSByZWFsIGtleSEhISE=",
    "tests-2026-b": "dGVzdHMtMjAyNi1iOiBub3QgYSByZWFsIGtleSEhISE=",
}
TEST_CODEC_CURRENT_KEY_ID = "tests-2026-b"
os.environ["CANCEL_CODEC_KEYS"] = json.dumps(TEST_CODEC_KEYS)
os.environ["CANCEL_CODEC_CURRENT_KEY_ID"] = TEST_CODEC_CURRENT_KEY_ID
# Worker and API processes the tests start serve no metrics unless a test asks for
# them (tests/test_metrics.py): many at once would fight over the default ports.
os.environ.setdefault("CANCEL_METRICS_WORKER_ADDRESS", "")
os.environ.setdefault("CANCEL_METRICS_API_ADDRESS", "")

# Set by the xdist controller, inherited by its workers.
TEMPORAL_ADDRESS_ENV = "CO_TEST_TEMPORAL_ADDRESS"
SANDBOX_URL_ENV = "CO_TEST_SANDBOX_URL"
SANDBOX_ORGANIZATION_ENV = "CO_TEST_SANDBOX_REBILLY_ORGANIZATION"
OWN_SANDBOX = "own_sandbox"


def sandbox_settings() -> SandboxSettings:
    # Every test's worker fetches its own Airalo token: lift the sandbox's token
    # rate limit for the run (tests/sandbox checks the limit itself), and Rebilly's
    # write limit (tests/sandbox and tests/contracts check it with small ones).
    # Airalo requires the SDK's signature, so every Airalo call of every test
    # proves our client signs as the official SDK does.
    return SandboxSettings(
        stn_processing_delay_seconds=1.0,
        airalo_token_rate_limit_per_minute=1000,
        airalo_require_signature=True,
        rebilly_write_rate_limit=1_000_000,
    )


async def start_dev_server() -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(ensure_temporal_cli()),
        search_attributes=sa.ALL,
        data_converter=data_converter(),
        dev_server_log_level="error",
        dev_server_extra_args=dev_server_config_flags(),
    )


# -- one dev server and one sandbox for every xdist worker ------------------------------


class SharedServers:
    """Started by the xdist controller; its workers find them through the environment."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._env: WorkflowEnvironment | None = None
        self._sandbox: SandboxServer | None = None
        self.log = Path(tempfile.gettempdir()) / f"co-tests-dev-server-{os.getpid()}.log"
        # Kept for a look after a failed run only.
        self.keep_log = True

    def start(self) -> None:
        # The controller captures no output: the CLI's banner and its error-level log
        # (e.g. polls cut short when a test's worker stops) go to a file instead.
        try:
            with _output_to(self.log):
                self._env = self._loop.run_until_complete(start_dev_server())
        except Exception as error:
            raise RuntimeError(f"the Temporal dev server did not start; see {self.log}") from error
        self._sandbox = SandboxServer(sandbox_settings()).start()
        os.environ[TEMPORAL_ADDRESS_ENV] = self._env.client.service_client.config.target_host
        os.environ[SANDBOX_URL_ENV] = self._sandbox.base_url
        os.environ[SANDBOX_ORGANIZATION_ENV] = self._sandbox.settings.rebilly_organization_id

    def stop(self) -> None:
        for name in (TEMPORAL_ADDRESS_ENV, SANDBOX_URL_ENV, SANDBOX_ORGANIZATION_ENV):
            os.environ.pop(name, None)
        if self._sandbox is not None:
            self._sandbox.stop()
        if self._env is not None:
            self._loop.run_until_complete(self._env.shutdown())
        self._loop.close()
        if not self.keep_log:
            self.log.unlink(missing_ok=True)


_shared_servers: SharedServers | None = None


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """File descriptors 1 and 2 to ``path``: a child process started meanwhile keeps it."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.dup2(log, 1)
        os.dup2(log, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, log):
            os.close(fd)


def _is_xdist_worker() -> bool:
    return "PYTEST_XDIST_WORKER" in os.environ


def _is_xdist_controller(config: pytest.Config) -> bool:
    """``-n N`` with N > 0 (or ``auto``), in the process that hands out the tests."""
    return not hasattr(config, "workerinput") and bool(getattr(config.option, "numprocesses", None))


def pytest_configure(config: pytest.Config) -> None:
    global _shared_servers
    if _is_xdist_controller(config) and not config.option.collectonly:
        _shared_servers = SharedServers()
        _shared_servers.start()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _shared_servers is not None:
        _shared_servers.keep_log = exitstatus != pytest.ExitCode.OK


def pytest_unconfigure(config: pytest.Config) -> None:
    global _shared_servers
    if _shared_servers is not None:
        _shared_servers.stop()
        _shared_servers = None


# -- the sandbox ---------------------------------------------------------------------------


class SandboxEndpoint(Protocol):
    """Where a provider sandbox listens (a ``SandboxServer`` is one)."""

    @property
    def base_url(self) -> str: ...
    @property
    def stn_url(self) -> str: ...
    @property
    def rebilly_url(self) -> str: ...
    @property
    def airalo_url(self) -> str: ...


@dataclass(frozen=True)
class RemoteSandbox:
    """The shared sandbox the xdist controller serves (in another process)."""

    base_url: str
    rebilly_organization: str

    @property
    def stn_url(self) -> str:
        return self.base_url + "/stn"

    @property
    def rebilly_url(self) -> str:
        return f"{self.base_url}/rebilly/organizations/{self.rebilly_organization}"

    @property
    def airalo_url(self) -> str:
        return self.base_url + "/airalo"


class TestSandbox:
    """The ``sandbox`` fixture: the shared sandbox, or the running test's own one.

    Session-scoped (module fixtures use it too), so it is switched per test rather
    than replaced: an xdist worker process runs one test at a time.
    """

    __test__ = False  # not a test class, despite the name

    def __init__(self, shared: SandboxEndpoint) -> None:
        self.shared = shared
        self.current = shared

    @property
    def is_shared(self) -> bool:
        return self.current is self.shared

    @property
    def base_url(self) -> str:
        return self.current.base_url

    @property
    def stn_url(self) -> str:
        return self.current.stn_url

    @property
    def rebilly_url(self) -> str:
        return self.current.rebilly_url

    @property
    def airalo_url(self) -> str:
        return self.current.airalo_url


@pytest.fixture(scope="session")
def sandbox() -> Iterator[TestSandbox]:
    url = os.environ.get(SANDBOX_URL_ENV)
    if _is_xdist_worker() and url:
        organization = os.environ.get(SANDBOX_ORGANIZATION_ENV, "org-sandbox")
        yield TestSandbox(RemoteSandbox(url, organization))
        return
    with SandboxServer(sandbox_settings()) as server:
        yield TestSandbox(server)


@pytest.fixture(autouse=True)
def _own_sandbox(request: pytest.FixtureRequest) -> Iterator[None]:
    """A private sandbox for a test marked ``own_sandbox`` (see the module docstring)."""
    if request.node.get_closest_marker(OWN_SANDBOX) is None:
        yield
        return
    sandbox: TestSandbox = request.getfixturevalue("sandbox")
    with SandboxServer(sandbox_settings()) as private:
        sandbox.current = private
        try:
            yield
        finally:
            sandbox.current = sandbox.shared


class SharedSandboxAdmin(SandboxAdmin):
    """Admin of the shared sandbox: reading and seeding only."""

    def _refuse(self, what: str) -> NoReturn:
        raise RuntimeError(
            f"{what} changes the sandbox that concurrent tests share: "
            f"mark the test @pytest.mark.{OWN_SANDBOX} to get a sandbox of its own"
        )

    def add_fault(self, **spec: Any) -> str:
        self._refuse("add_fault")

    def clear_faults(self) -> None:
        self._refuse("clear_faults")

    def reset(self) -> None:
        self._refuse("reset")

    def configure(self, **settings: Any) -> dict[str, Any]:
        if settings:
            self._refuse("configure")
        return super().configure()

    def add_webhook_fault(self, **spec: Any) -> str:
        self._refuse("add_webhook_fault")

    def clear_webhook_faults(self) -> None:
        self._refuse("clear_webhook_faults")

    def clear_webhooks(self) -> None:
        self._refuse("clear_webhooks")

    def airalo_revoke_tokens(self) -> int:
        self._refuse("airalo_revoke_tokens")


@pytest.fixture
def sandbox_admin(sandbox: TestSandbox) -> Iterator[SandboxAdmin]:
    admin = (SharedSandboxAdmin if sandbox.is_shared else SandboxAdmin)(sandbox.base_url)
    yield admin
    admin.close()


# -- Temporal --------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    address = os.environ.get(TEMPORAL_ADDRESS_ENV)
    if _is_xdist_worker() and address:
        client = await Client.connect(address, data_converter=data_converter())
        yield WorkflowEnvironment.from_client(client)
        return
    env = await start_dev_server()
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


def provider_settings_for(sandbox: SandboxEndpoint) -> ProviderSettings:
    """Production settings classes, pointed at the test sandbox."""
    return {
        Provider.STN: StnSettings(base_url=sandbox.stn_url),
        Provider.REBILLY: RebillySettings(base_url=sandbox.rebilly_url),
        Provider.AIRALO: AiraloSettings(base_url=sandbox.airalo_url),
    }


@contextlib.asynccontextmanager
async def product_worker(
    client: Client, sandbox: SandboxEndpoint, task_queue: str
) -> AsyncIterator[ProductWorkers]:
    """The production workers (same workflows, activities, lanes, options) on
    ``task_queue``, for as long as the ``async with`` lasts (a test may stop and start
    them again: the saga's worker away)."""
    async with (
        provider_clients(provider_settings_for(sandbox)) as clients,
        build_worker(client, task_queue, clients) as running,
    ):
        yield running


@pytest.fixture
async def worker(
    client: Client, sandbox: TestSandbox, task_queue: str
) -> AsyncIterator[ProductWorkers]:
    """The production workers on a fresh queue, for the whole test."""
    async with product_worker(client, sandbox, task_queue) as running:
        yield running


@pytest.fixture
def uid() -> str:
    """A unique suffix so tests never share provider state or workflow ids."""
    return uuid.uuid4().hex[:10]
