"""The whole product on a PostgreSQL-backed, multi-service Temporal, under one directory.

:class:`ClusterStack` is what ``make cluster`` runs and what ``tests/cluster`` starts
(on free ports, in a temporary directory). Its parts, in start order:

1. PostgreSQL (``postgres/``: ``initdb`` once, ``pg_ctl start``), Temporal's role with
   a generated password (``temporal-password``, 0600), both schemas (idempotent);
2. the four Temporal services, one process each (``history``, ``matching``,
   ``frontend``, ``worker``), then the ``default`` namespace and our search attributes;
3. the Web UI server (optional), the provider sandbox (``sandbox-state.json``; none
   with ``sandbox_state_file=False``), the codec server (with the UI), N product
   workers and the HTTP API (optional).

:meth:`ClusterStack.stop` stops them in the reverse order; PostgreSQL last, with a
clean shutdown. Everything survives a restart: the database, the sandbox's state.
Logs go to ``logs/<process>.log``.

The product processes get the environment ``make run`` gives them
(``starter/devstack.py``: provider URLs on the sandbox, webhooks to the API, a dev
API key, the codec server's token); only the Temporal address differs.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import secrets
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from config.settings import OrchestratorSettings
from config.temporal_server import ServerBinaries
from sandbox.settings import SandboxSettings
from sandbox.testing import SandboxAdmin
from starter.cluster import temporal
from starter.cluster.ports import TEMPORAL_SERVICES, ClusterPorts
from starter.cluster.postgres import Postgres, PostgresBinaries
from starter.cluster.process import Service
from starter.devstack import Ports, codec_server_env, dev_api_key

TEMPORAL_ROLE = "temporal"
NUM_HISTORY_SHARDS = 4
WORKER_READY_LINE = "Worker polling task queue"
REBILLY_WEBHOOK_USER = "rebilly"


class ClusterMismatch(RuntimeError):
    """The directory holds a cluster set up differently (e.g. another shard count)."""


@dataclass
class ClusterStack:
    directory: Path
    binaries: ServerBinaries
    postgres_binaries: PostgresBinaries
    ports: ClusterPorts = field(default_factory=ClusterPorts.from_env)
    workers: int = 2
    #: Fixed at the first start: Temporal refuses another count on the same database.
    num_history_shards: int = NUM_HISTORY_SHARDS
    #: Serve the HTTP API. (The Web UI and its codec server run when ``binaries.ui`` is set.)
    api: bool = True
    #: The sandbox's own settings (``SANDBOX_*``) and extra worker environment.
    sandbox_env: dict[str, str] = field(default_factory=dict)
    #: The sandbox keeps its state in ``sandbox-state.json`` (restarts keep it). Off for
    #: benchmarks: the sandbox rewrites the whole file after every request, a cost that
    #: grows with its state and belongs to the test double, not to the product.
    sandbox_state_file: bool = True
    worker_env: dict[str, str] = field(default_factory=dict)
    temporal_log_level: str = "warn"
    #: The local dev key (all scopes) the API accepts; ``None``: ``CANCEL_API_KEYS`` rules.
    api_token: str | None = field(default_factory=lambda: ClusterStack.new_token())
    codec_token: str | None = field(default_factory=lambda: ClusterStack.new_token())
    postgres: Postgres = field(init=False)
    #: Temporal's PostgreSQL role; its password is generated once per directory.
    login: temporal.PostgresLogin = field(init=False)
    services: dict[str, Service] = field(init=False, default_factory=dict)
    ui: Service | None = field(init=False, default=None)
    sandbox: Service = field(init=False)
    codec_server: Service | None = field(init=False, default=None)
    product_workers: list[Service] = field(init=False, default_factory=list)
    http_api: Service | None = field(init=False, default=None)
    #: Seconds each start-up stage took (for the banner and the test report).
    timings: dict[str, float] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.directory = self.directory.resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.postgres = Postgres(
            self.postgres_binaries, self.directory / "postgres", self.ports.postgres
        )
        self.login = temporal.PostgresLogin(
            "127.0.0.1", self.ports.postgres, TEMPORAL_ROLE, self._password()
        )
        temporal_env = {
            **os.environ,
            **self.ports.temporal_env(),
            "TEMPORAL_POSTGRES_DSN": self.login.dsn,
            "TEMPORAL_NUM_HISTORY_SHARDS": str(self.num_history_shards),
            "TEMPORAL_BIND_IP": "127.0.0.1",
            "TEMPORAL_BROADCAST_ADDRESS": "127.0.0.1",
            "TEMPORAL_DYNAMIC_CONFIG_FILE": str(temporal.DYNAMIC_CONFIG),
            "TEMPORAL_LOG_LEVEL": self.temporal_log_level,
        }
        for name in TEMPORAL_SERVICES:
            self.services[name] = temporal.service(
                name,
                self.binaries.server,
                temporal_env,
                self.logs / f"temporal-{name}.log",
                temporal.ready_port(name, self.ports.service(name)),
            )
        self._product_processes()

    @staticmethod
    def new_token() -> str:
        """A per-run API key or codec token, as ``make run`` makes them."""
        return secrets.token_urlsafe(24)

    # -- where things are -----------------------------------------------------------

    @property
    def logs(self) -> Path:
        return self.directory / "logs"

    @property
    def address(self) -> str:
        return self.ports.frontend_address

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.sandbox}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.api}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.ui}"

    @property
    def state_file(self) -> Path:
        return self.directory / "sandbox-state.json"

    def devstack_ports(self) -> Ports:
        """The ports in ``make run``'s terms, for its banner and codec helpers."""
        return Ports(
            temporal=self.ports.frontend.grpc,
            ui=self.ports.ui,
            sandbox=self.ports.sandbox,
            api=self.ports.api,
            codec=self.ports.codec,
        )

    def _password(self) -> str:
        """Temporal's PostgreSQL password: generated once, kept beside the data (0600)."""
        path = self.directory / "temporal-password"
        if not path.is_file():
            path.touch(mode=0o600)
            path.write_text(secrets.token_hex(24))
        return path.read_text().strip()

    # -- the product's processes ----------------------------------------------------

    def _product_processes(self) -> None:
        hooks = f"{self.api_url}/v1/webhooks"
        hook_password = secrets.token_urlsafe(18)
        env = {
            **os.environ,
            "TEMPORAL_ADDRESS": self.address,
            "TEMPORAL_NAMESPACE": temporal.NAMESPACE,
            "STN_BASE_URL": f"{self.sandbox_url}/stn",
            "REBILLY_BASE_URL": f"{self.sandbox_url}/rebilly/organizations/org-sandbox",
            "AIRALO_BASE_URL": f"{self.sandbox_url}/airalo",
        }
        env.setdefault("CANCEL_LOG_FORMAT", "pretty")
        if self.api:
            env.setdefault("AIRALO_WEBHOOK_URL", f"{hooks}/airalo")
        sandbox_env = {**env, **self.sandbox_env}
        if self.api:
            sandbox_env.update(
                {
                    "SANDBOX_AIRALO_OPTED_IN_WEBHOOK_URL": f"{hooks}/airalo",
                    "SANDBOX_REBILLY_WEBHOOK_URL": f"{hooks}/rebilly",
                    "SANDBOX_REBILLY_WEBHOOK_USERNAME": REBILLY_WEBHOOK_USER,
                    "SANDBOX_REBILLY_WEBHOOK_PASSWORD": hook_password,
                }
            )
        python = sys.executable
        self.sandbox = Service(
            "sandbox",
            [
                python,
                "-m",
                "sandbox",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.ports.sandbox),
                *(["--state-file", str(self.state_file)] if self.sandbox_state_file else []),
            ],
            sandbox_env,
            self.logs / "sandbox.log",
            port=self.ports.sandbox,
        )
        for index in range(self.workers):
            metrics = (
                f"127.0.0.1:{self.ports.worker_metrics + index}"
                if self.ports.worker_metrics
                else ""
            )
            self.product_workers.append(
                Service(
                    f"worker {index + 1}",
                    [python, "worker.py"],
                    {**env, "CANCEL_METRICS_WORKER_ADDRESS": metrics, **self.worker_env},
                    self.logs / f"worker-{index + 1}.log",
                    ready_line=WORKER_READY_LINE,
                    graceful=signal.SIGINT,
                )
            )
        if self.binaries.ui is not None:
            self.ui = Service(
                "Temporal Web UI",
                [
                    str(self.binaries.ui),
                    "--root",
                    str(temporal.CONFIG_DIR.parent),
                    "--config",
                    "ui",
                    "--env",
                    "cluster",
                    "start",
                ],
                {
                    **os.environ,
                    "TEMPORAL_ADDRESS": self.address,
                    "TEMPORAL_UI_IP": "127.0.0.1",
                    "TEMPORAL_UI_PORT": str(self.ports.ui),
                    "TEMPORAL_CODEC_ENDPOINT": f"http://127.0.0.1:{self.ports.codec}",
                    "TEMPORAL_CORS_ORIGINS": f"{self.ui_url},http://localhost:{self.ports.ui}",
                },
                self.logs / "temporal-ui.log",
                port=self.ports.ui,
            )
            self.codec_server = Service(
                "codec server",
                [python, "-m", "starter.codec_server"],
                codec_server_env(env, self.devstack_ports(), self.codec_token),
                self.logs / "codec-server.log",
                port=self.ports.codec,
                graceful=signal.SIGINT,
            )
        if self.api:
            api_env = {
                **env,
                "CANCEL_API_HOST": "127.0.0.1",
                "CANCEL_API_PORT": str(self.ports.api),
                "CANCEL_METRICS_API_ADDRESS": (
                    f"127.0.0.1:{self.ports.api_metrics}" if self.ports.api_metrics else ""
                ),
            }
            if self.api_token is not None:
                api_env["CANCEL_API_KEYS"] = json.dumps([dev_api_key(self.api_token)])
            api_env.setdefault(
                "CANCEL_API_AIRALO_WEBHOOK_SECRET", SandboxSettings().airalo_client_secret
            )
            api_env.setdefault("CANCEL_API_REBILLY_WEBHOOK_USERNAME", REBILLY_WEBHOOK_USER)
            api_env.setdefault("CANCEL_API_REBILLY_WEBHOOK_PASSWORD", hook_password)
            self.http_api = Service(
                "HTTP API",
                [python, "-m", "starter.api"],
                api_env,
                self.logs / "api.log",
                port=self.ports.api,
                graceful=signal.SIGINT,
            )

    def processes(self) -> list[Service]:
        """Every supervised process, in start order (PostgreSQL is not one: pg_ctl's)."""
        ordered = [self.services[name] for name in TEMPORAL_SERVICES]
        ordered += [s for s in (self.ui, self.sandbox, self.codec_server) if s is not None]
        ordered += self.product_workers
        ordered += [self.http_api] if self.http_api is not None else []
        return ordered

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Bring everything up in order; on failure, stop what started and raise."""
        try:
            await self._timed("postgres", self.start_database)
            await self._timed("temporal", self.start_temporal)
            for process in self.processes()[len(TEMPORAL_SERVICES) :]:
                await self._timed(process.name, functools.partial(asyncio.to_thread, process.start))
            if self.http_api is not None:
                await self._wait_until_api_ready()
        except BaseException:
            await asyncio.to_thread(self.stop)
            raise

    async def _timed(self, stage: str, step: Callable[[], Awaitable[None]]) -> None:
        began = time.monotonic()
        await step()
        self.timings[stage] = time.monotonic() - began

    async def start_database(self) -> None:
        """PostgreSQL up, Temporal's role, both schemas at the server's version."""
        created = await asyncio.to_thread(self.postgres.init)
        self._check_shards(created)
        await asyncio.to_thread(self.postgres.start)
        await asyncio.to_thread(self.postgres.ensure_role, self.login.user, self.login.password)
        await asyncio.to_thread(
            temporal.setup_schema, self.binaries.sql, self.login, self.logs / "schema.log"
        )

    def _check_shards(self, created: bool) -> None:
        record = self.directory / "cluster.json"
        if created or not record.is_file():
            record.write_text(json.dumps({"numHistoryShards": self.num_history_shards}) + "\n")
            return
        recorded = json.loads(record.read_text())["numHistoryShards"]
        if recorded != self.num_history_shards:
            raise ClusterMismatch(
                f"{self.directory} was set up with {recorded} history shards; Temporal cannot "
                f"change that to {self.num_history_shards} on the same database (use another "
                "directory, or delete this one and lose its sagas)"
            )

    async def start_temporal(self) -> None:
        """The four services, then the namespace and our search attributes."""
        for name in TEMPORAL_SERVICES:
            await asyncio.to_thread(self.services[name].start)
        await temporal.register_namespace(self.address)

    async def _wait_until_api_ready(self) -> None:
        """``/readyz``: the API reaches Temporal (an open port alone is not enough)."""
        deadline = time.monotonic() + 60.0
        async with httpx.AsyncClient(base_url=self.api_url, timeout=5.0) as http:
            while time.monotonic() < deadline:
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError("the HTTP API never became ready")

    def stop(self) -> None:
        """Everything, in the reverse order of the start; PostgreSQL last (fast mode)."""
        for process in reversed(self.processes()):
            process.stop()
        if self.postgres.alive:
            self.postgres.stop("fast")

    def died(self) -> list[Service]:
        """Processes that exited although nobody stopped them."""
        return [process for process in self.processes() if process.died]

    # -- faults (tests) ----------------------------------------------------------------

    async def restart_service(self, name: str, down_seconds: float) -> None:
        """Stop one Temporal service (SIGTERM), leave it down, start it again."""
        service = self.services[name]
        await asyncio.to_thread(service.stop)
        await asyncio.sleep(down_seconds)
        await asyncio.to_thread(service.start)

    async def restart_postgres(self, down_seconds: float, mode: str = "immediate") -> None:
        """``pg_ctl stop -m immediate`` (as in a crash: WAL recovery on the next start),
        leave it down, start it again."""
        await asyncio.to_thread(self.postgres.stop, mode)
        await asyncio.sleep(down_seconds)
        await asyncio.to_thread(self.postgres.start)

    def admin(self) -> SandboxAdmin:
        return SandboxAdmin(self.sandbox_url, timeout=30.0)

    @property
    def task_queue(self) -> str:
        return self.worker_env.get("CANCEL_TASK_QUEUE") or OrchestratorSettings().task_queue
