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

The product's processes are ``make run``'s (:class:`stacks.product.ProductProcesses`:
provider URLs on the sandbox, webhooks to the API, a dev API key, the codec server's
token); only the Temporal address differs.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from config.settings import OrchestratorSettings
from config.temporal_server import ServerBinaries
from sandbox.testing import SandboxAdmin
from stacks.banner import Ports
from stacks.cluster import temporal
from stacks.cluster.ports import TEMPORAL_SERVICES, ClusterPorts
from stacks.cluster.postgres import Postgres, PostgresBinaries
from stacks.environment import Role, Wiring, environment, new_secret
from stacks.product import ProductProcesses
from stacks.service import Service, stop_in_reverse

TEMPORAL_ROLE = "temporal"
NUM_HISTORY_SHARDS = 4


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
    #: The sandbox's own settings (``SANDBOX_*``).
    sandbox_env: dict[str, str] = field(default_factory=dict)
    #: The sandbox keeps its state in ``sandbox-state.json`` (restarts keep it). Off for
    #: benchmarks: the sandbox rewrites the whole file after every request, a cost that
    #: grows with its state and belongs to the test double, not to the product.
    sandbox_state_file: bool = True
    #: Extra worker environment (e.g. ``CANCEL_WORKER_*`` tuning).
    worker_env: dict[str, str] = field(default_factory=dict)
    #: Each provider call's HTTP timeout in the workers (``None``: the product's default).
    provider_timeout_seconds: float | None = None
    task_queue: str = field(default_factory=lambda: OrchestratorSettings().task_queue)
    temporal_log_level: str = "warn"
    #: The local dev key (all scopes) the API accepts; ``None``: ``CANCEL_API_KEYS`` rules.
    api_token: str | None = field(default_factory=new_secret)
    codec_token: str | None = field(default_factory=new_secret)
    postgres: Postgres = field(init=False)
    #: Temporal's PostgreSQL role; its password is generated once per directory.
    login: temporal.PostgresLogin = field(init=False)
    services: dict[str, Service] = field(init=False, default_factory=dict)
    ui: Service | None = field(init=False, default=None)
    product: ProductProcesses = field(init=False)
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
        if self.binaries.ui is not None:
            self.ui = self._ui()
        self.product = self._product_processes()

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

    def _product_processes(self) -> ProductProcesses:
        wiring = Wiring(
            temporal_address=self.address,
            sandbox_url=self.sandbox_url,
            namespace=temporal.NAMESPACE,
            task_queue=self.task_queue,
            api_port=self.ports.api if self.api else None,
            api_token=self.api_token,
            codec_port=self.ports.codec if self.binaries.ui is not None else None,
            codec_token=self.codec_token,
            ui_port=self.ports.ui,
            log_format="pretty",
        )
        return ProductProcesses(
            wiring,
            logs=self.logs,
            state_file=self.state_file if self.sandbox_state_file else None,
            workers=self.workers,
            worker_metrics=self.ports.worker_metrics,
            api_metrics=self.ports.api_metrics,
            provider_timeout_seconds=self.provider_timeout_seconds,
            sandbox_env=self.sandbox_env,
            worker_env=self.worker_env,
        )

    def _ui(self) -> Service:
        return Service(
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

    # The product's processes, by their place in the cluster.

    @property
    def sandbox(self) -> Service:
        return self.product.sandbox

    @property
    def codec_server(self) -> Service | None:
        return self.product.codec_server

    @property
    def product_workers(self) -> list[Service]:
        return self.product.workers

    @property
    def http_api(self) -> Service | None:
        return self.product.api

    def client_env(self) -> dict[str, str]:
        """Where a client (cancelctl, a bare worker) finds this cluster and its sandbox."""
        return environment(self.product.wiring, Role.CLIENT)

    def processes(self) -> list[Service]:
        """Every supervised process, in start order (PostgreSQL is not one: pg_ctl's)."""
        ordered = [self.services[name] for name in TEMPORAL_SERVICES]
        ordered += [self.ui] if self.ui is not None else []
        return ordered + self.product.in_start_order()

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Bring everything up in order; on failure, stop what started and raise."""
        try:
            await self._timed("postgres", self.start_database)
            await self._timed("temporal", self.start_temporal)
            for process in self.processes()[len(TEMPORAL_SERVICES) :]:
                await self._timed(process.name, functools.partial(asyncio.to_thread, process.start))
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

    def stop(self, *, say: bool = False) -> None:
        """Everything, in the reverse order of the start; PostgreSQL last (fast mode).
        ``say``: print each as it stops."""
        stop_in_reverse(self.processes(), say=say)
        if self.postgres.alive:
            if say:
                print("stopping PostgreSQL...", flush=True)
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
