"""The product's processes, started as ``make run`` starts them, so each can be killed.

One :class:`Stack` per scenario: the Temporal dev server on its own SQLite file,
the provider sandbox with ``--state-file``, the worker and the HTTP API, each a
:class:`stacks.service.Service` (its own session: a SIGKILL takes its whole process
group) on free ports, with its output in a log file beside the data. The processes
and their environment are ``make run``'s (:class:`stacks.devstack.DevStack`), except
that the Web UI and the codec server are off and the ports are free ones, so a
scenario never collides with ``make run`` or the test suite. Every kill and restart
is recorded as an :class:`Outage`: the recovery times are measured from their ends.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import Client
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

from config.temporal import data_converter
from config.temporal_cli import ensure_temporal_cli
from sandbox.testing import SandboxAdmin
from stacks.devstack import DevStack, dev_server
from stacks.environment import Role, Wiring, environment, new_secret
from stacks.ports import free_port
from stacks.product import ProductProcesses
from stacks.service import ROOT, Service

TASK_QUEUE = "cancellations"
#: Each provider call's HTTP timeout in the worker (``*_TIMEOUT_SECONDS``): a latency
#: fault longer than this is a timeout whose request the provider still applies.
PROVIDER_TIMEOUT_SECONDS = 5.0


def utc_now() -> datetime:
    return datetime.now(UTC)


@functools.cache
def quiet_runtime() -> Runtime:
    """The suite's own client: its retries while the server is down (it is, on purpose)
    are not worth a warning each."""
    logging = LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))
    return Runtime(telemetry=TelemetryConfig(logging=logging))


@dataclass
class Outage:
    """A component that was down: killed at ``started``, back at ``ended``.

    ``ended`` is when the replacement was started (the worker: its start-up counts
    as recovery) or accepted connections again (the server, the sandbox).
    """

    component: str
    started: datetime
    ended: datetime | None = None
    how: str = "SIGKILL"


@dataclass
class Stack:
    """Dev server, sandbox, worker and API of one scenario, under ``workdir``."""

    workdir: Path
    temporal_port: int = field(default_factory=free_port)
    sandbox_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    api_token: str = field(default_factory=new_secret)
    #: The worker's httpx timeout per provider call (``*_TIMEOUT_SECONDS``).
    provider_timeout_seconds: float = PROVIDER_TIMEOUT_SECONDS
    #: Extra environment of the worker process (e.g. ``CANCEL_WORKER_*`` tuning).
    worker_env: dict[str, str] = field(default_factory=dict)
    #: The sandbox keeps its state in a file (restarts keep it). Off for benchmarks: the
    #: sandbox rewrites the whole file after every request, which grows with its state.
    sandbox_state_file: bool = True
    outages: list[Outage] = field(default_factory=list)
    cli_env: dict[str, str] = field(init=False)
    dev: DevStack = field(init=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        wiring = Wiring(
            temporal_address=self.temporal_address,
            sandbox_url=self.sandbox_url,
            task_queue=TASK_QUEUE,
            api_port=self.api_port,
            api_token=self.api_token,
        )
        base = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.cli_env = environment(wiring, Role.CLIENT, base=base)
        self.dev = DevStack(
            dev_server(
                ensure_temporal_cli(),
                self.temporal_port,
                self.workdir / "temporal.db",
                log=self.workdir / "temporal.log",
                base=base,
            ),
            ProductProcesses(
                wiring,
                logs=self.workdir,
                state_file=self.state_file if self.sandbox_state_file else None,
                # A restarted worker's start-up counts as recovery (Outage.ended).
                wait_for_workers=False,
                # Prometheus endpoints on free ports: stacks side by side never collide.
                worker_metrics=free_port(),
                api_metrics=free_port(),
                provider_timeout_seconds=self.provider_timeout_seconds,
                worker_env=self.worker_env,
                base=base,
            ),
        )

    @property
    def server(self) -> Service:
        return self.dev.server

    @property
    def sandbox(self) -> Service:
        return self.dev.product.sandbox

    @property
    def worker(self) -> Service:
        return self.dev.product.workers[0]

    @property
    def api(self) -> Service:
        api = self.dev.product.api
        assert api is not None  # the wiring has an api_port
        return api

    # -- addresses -------------------------------------------------------------

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def state_file(self) -> Path:
        return self.workdir / "sandbox-state.json"

    # -- life cycle ------------------------------------------------------------

    async def start(self, *, api: bool = True) -> None:
        """In ``make run``'s order: server, sandbox, worker, API (ready once it reaches
        Temporal). They are stopped at the latest when the suite's process exits."""
        atexit.register(self.stop)
        await asyncio.to_thread(self.dev.start, api=api)

    def stop(self) -> None:
        """API and worker first, as ``make run`` stops; the sandbox saves its state."""
        self.dev.stop()

    async def client(self) -> Client:
        return await Client.connect(
            self.temporal_address,
            namespace="default",
            data_converter=data_converter(),
            runtime=quiet_runtime(),
        )

    def admin(self) -> SandboxAdmin:
        return SandboxAdmin(self.sandbox_url, timeout=30.0)

    # -- faults ----------------------------------------------------------------

    async def crash_worker(self, down_seconds: float) -> Outage:
        """SIGKILL the worker, leave it down ``down_seconds``, start a new one."""
        return await self._outage("worker", self.worker, down_seconds)

    async def restart_server(self, down_seconds: float) -> Outage:
        """SIGKILL the dev server and start it again on the same SQLite file."""
        return await self._outage("server", self.server, down_seconds)

    async def restart_sandbox(self, down_seconds: float) -> Outage:
        """SIGKILL the sandbox (every provider unreachable) and start it again on the
        same state file. Its call log and faults start empty: the caller rescues them."""
        return await self._outage("sandbox", self.sandbox, down_seconds)

    async def _outage(self, component: str, service: Service, down_seconds: float) -> Outage:
        outage = Outage(component, utc_now())
        service.kill()
        self.outages.append(outage)
        await asyncio.sleep(down_seconds)
        await asyncio.to_thread(service.start)
        outage.ended = utc_now()
        return outage

    def died(self) -> list[Service]:
        """Processes that exited without the suite killing or stopping them."""
        return self.dev.died()
