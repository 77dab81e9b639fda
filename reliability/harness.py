"""The product's processes, started as ``make run`` starts them, so each can be killed.

One :class:`Stack` per scenario: the Temporal dev server on its own SQLite file,
the provider sandbox with ``--state-file``, the worker and the HTTP API, each a
subprocess in its own session (a SIGKILL takes its whole process group) on free
ports, with its output in a log file beside the data. The start-up arguments and
environment are ``starter/devstack.py``'s (its helpers are reused), except that
the Web UI is off and the ports are free ones, so a scenario never collides with
``make run`` or the test suite. Every kill and restart is recorded as an
:class:`Outage`: the recovery times are measured from their ends.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from temporalio.client import Client
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

from config.temporal import data_converter
from config.temporal_cli import dev_server_database_flags, ensure_temporal_cli
from domain.search_attributes import dev_server_flags
from sandbox.settings import SandboxSettings
from sandbox.testing import SandboxAdmin
from starter.devstack import STOP_SECONDS, dev_api_key, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
TASK_QUEUE = "cancellations"
#: Each provider call's HTTP timeout in the worker (``*_TIMEOUT_SECONDS``): a latency
#: fault longer than this is a timeout whose request the provider still applies.
PROVIDER_TIMEOUT_SECONDS = 5.0
REBILLY_WEBHOOK_USER = "rebilly"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


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
class ManagedProcess:
    """One product process; ``port`` is awaited after every start (``None``: no port)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    port: int | None = None
    graceful: signal.Signals = signal.SIGTERM
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    #: Killed by the suite and not started again yet.
    down_on_purpose: bool = False

    async def start(self) -> None:
        self.process = self._spawn()
        self.starts += 1
        self.down_on_purpose = False
        if self.port is not None:
            await asyncio.to_thread(wait_for_port, self.port, self.name, self.process)

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as out:
            out.write(f"\n--- start {self.starts + 1} at {utc_now().isoformat()}\n".encode())
            out.flush()
            return subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the process and everything in its session; no goodbye."""
        process = self.process
        self.down_on_purpose = True
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        """Stop it as ``make run``'s Ctrl-C does; SIGKILL if it does not go in time."""
        process = self.process
        self.down_on_purpose = True
        if process is None or process.poll() is not None:
            return
        process.send_signal(self.graceful)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class Stack:
    """Dev server, sandbox, worker and API of one scenario, under ``workdir``."""

    workdir: Path
    temporal_port: int = field(default_factory=free_port)
    sandbox_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    api_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    #: The worker's httpx timeout per provider call (``*_TIMEOUT_SECONDS``).
    provider_timeout_seconds: float = PROVIDER_TIMEOUT_SECONDS
    #: Extra environment of the worker process (e.g. ``CANCEL_WORKER_*`` tuning).
    worker_env: dict[str, str] = field(default_factory=dict)
    #: The sandbox keeps its state in a file (restarts keep it). Off for benchmarks: the
    #: sandbox rewrites the whole file after every request, which grows with its state.
    sandbox_state_file: bool = True
    outages: list[Outage] = field(default_factory=list)
    server: ManagedProcess = field(init=False)
    sandbox: ManagedProcess = field(init=False)
    worker: ManagedProcess = field(init=False)
    api: ManagedProcess = field(init=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        hooks = f"{self.api_url}/v1/webhooks"
        hook_password = secrets.token_urlsafe(18)
        base = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "TEMPORAL_ADDRESS": self.temporal_address,
            "TEMPORAL_NAMESPACE": "default",
            "CANCEL_TASK_QUEUE": TASK_QUEUE,
            "STN_BASE_URL": f"{self.sandbox_url}/stn",
            "REBILLY_BASE_URL": f"{self.sandbox_url}/rebilly/organizations/org-sandbox",
            "AIRALO_BASE_URL": f"{self.sandbox_url}/airalo",
            "AIRALO_WEBHOOK_URL": f"{hooks}/airalo",
            # Prometheus endpoints on free ports: stacks side by side never collide.
            "CANCEL_METRICS_WORKER_ADDRESS": f"127.0.0.1:{free_port()}",
            "CANCEL_METRICS_API_ADDRESS": f"127.0.0.1:{free_port()}",
        }
        worker_env = {
            **base,
            **{
                f"{provider}_TIMEOUT_SECONDS": str(self.provider_timeout_seconds)
                for provider in ("STN", "REBILLY", "AIRALO")
            },
            **self.worker_env,
        }
        sandbox_env = {
            **base,
            "SANDBOX_AIRALO_OPTED_IN_WEBHOOK_URL": f"{hooks}/airalo",
            "SANDBOX_REBILLY_WEBHOOK_URL": f"{hooks}/rebilly",
            "SANDBOX_REBILLY_WEBHOOK_USERNAME": REBILLY_WEBHOOK_USER,
            "SANDBOX_REBILLY_WEBHOOK_PASSWORD": hook_password,
        }
        api_env = {
            **base,
            "CANCEL_API_HOST": "127.0.0.1",
            "CANCEL_API_PORT": str(self.api_port),
            "CANCEL_API_KEYS": json.dumps([dev_api_key(self.api_token)]),
            "CANCEL_API_AIRALO_WEBHOOK_SECRET": SandboxSettings().airalo_client_secret,
            "CANCEL_API_REBILLY_WEBHOOK_USERNAME": REBILLY_WEBHOOK_USER,
            "CANCEL_API_REBILLY_WEBHOOK_PASSWORD": hook_password,
        }
        self.cli_env = base
        self.server = ManagedProcess(
            "Temporal dev server",
            [
                str(ensure_temporal_cli()),
                "server",
                "start-dev",
                "--ip",
                "127.0.0.1",
                "--port",
                str(self.temporal_port),
                "--headless",
                *dev_server_database_flags(self.workdir / "temporal.db"),
                "--log-level",
                "error",
                *dev_server_flags(),
            ],
            base,
            self.workdir / "temporal.log",
            self.temporal_port,
        )
        self.sandbox = ManagedProcess(
            "sandbox",
            [
                sys.executable,
                "-m",
                "sandbox",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.sandbox_port),
                *(["--state-file", str(self.state_file)] if self.sandbox_state_file else []),
            ],
            sandbox_env,
            self.workdir / "sandbox.log",
            self.sandbox_port,
        )
        self.worker = ManagedProcess(
            "worker",
            [sys.executable, "worker.py"],
            worker_env,
            self.workdir / "worker.log",
            graceful=signal.SIGINT,
        )
        self.api = ManagedProcess(
            "HTTP API",
            [sys.executable, "-m", "starter.api"],
            api_env,
            self.workdir / "api.log",
            self.api_port,
            graceful=signal.SIGINT,
        )

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
        """In ``make run``'s order: server, sandbox, worker, API. They are stopped at
        the latest when the suite's process exits."""
        atexit.register(self.stop)
        await self.server.start()
        await self.sandbox.start()
        await self.worker.start()
        if api:
            await self.api.start()
            await self._wait_until_api_ready()

    async def _wait_until_api_ready(self) -> None:
        """``/readyz``: the API reaches Temporal (a port alone is not enough)."""
        async with httpx.AsyncClient(base_url=self.api_url, timeout=5.0) as http:
            for _ in range(300):
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError("the HTTP API never became ready")

    def stop(self) -> None:
        """API and worker first, as ``make run`` stops; the sandbox saves its state."""
        for process in (self.api, self.worker, self.sandbox, self.server):
            process.stop()

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
        outage = Outage("worker", utc_now())
        self.worker.kill()
        self.outages.append(outage)
        await asyncio.sleep(down_seconds)
        await self.worker.start()
        outage.ended = utc_now()
        return outage

    async def restart_server(self, down_seconds: float) -> Outage:
        """SIGKILL the dev server and start it again on the same SQLite file."""
        outage = Outage("server", utc_now())
        self.server.kill()
        self.outages.append(outage)
        await asyncio.sleep(down_seconds)
        await self.server.start()
        outage.ended = utc_now()
        return outage

    async def restart_sandbox(self, down_seconds: float) -> Outage:
        """SIGKILL the sandbox (every provider unreachable) and start it again on the
        same state file. Its call log and faults start empty: the caller rescues them."""
        outage = Outage("sandbox", utc_now())
        self.sandbox.kill()
        self.outages.append(outage)
        await asyncio.sleep(down_seconds)
        await self.sandbox.start()
        outage.ended = utc_now()
        return outage

    def died(self) -> list[ManagedProcess]:
        """Processes that exited without the suite killing or stopping them."""
        return [
            process
            for process in (self.server, self.sandbox, self.worker, self.api)
            if process.process is not None and not process.alive and not process.down_on_purpose
        ]
