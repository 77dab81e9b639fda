"""Where a benchmark runs: a Temporal server, the sandbox, the product's worker and
the bare worker (:mod:`bench.bare`), all on this machine, on free ports in a temporary
directory, stopped when the benchmark ends.

``dev`` (the default, ``make bench``): ``make run``'s dev server (SQLite), started by
the reliability suite's :class:`reliability.harness.Stack`.

``cluster`` (``make bench TARGET=cluster``): ``make cluster``'s Temporal on
PostgreSQL (:class:`stacks.cluster.stack.ClusterStack`: PostgreSQL, the four Temporal
services in their own processes, 4 history shards), without the Web UI, and with
**one** product worker as on dev: the bare worker is one process too, so the ratios
compare like with like.

On both: the sandbox in memory (no state file: it would rewrite a file that grows
with every saga after each request, a cost of the test double, not of the product),
the HTTP API only when a benchmark asks for it, each provider call's HTTP timeout at
the product's default (15 s), metrics served by the worker and the API as in
production, and sTN terminations that settle the moment they are due.

A benchmark sees a :class:`Bench`; what differs by target is its :class:`Deployment`.
The figures :attr:`Bench.pids` names: ``worker``, ``bare worker``, ``server`` (the dev
server; on the cluster its four services summed), ``database`` (the cluster's
PostgreSQL: postmaster and backends; the dev server's SQLite is inside ``server``),
``sandbox`` and ``api``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from temporalio.client import Client

from bench.measure import Pids, Processes
from config.settings import lane_limit_variable
from config.temporal import data_converter
from config.temporal_server import ensure_server_binaries
from domain.common import Provider
from reliability.harness import TASK_QUEUE, Stack, quiet_runtime
from sandbox.testing import SandboxAdmin
from stacks.cluster.ports import TEMPORAL_SERVICES, ClusterPorts
from stacks.cluster.postgres import require_postgres
from stacks.cluster.stack import ClusterStack
from stacks.cluster.temporal import DATABASE, NAMESPACE, VISIBILITY_DATABASE
from stacks.ports import free_port
from stacks.service import Service

#: The dev server's database file in the stack's directory (``reliability.harness``).
SQLITE_FILE = "temporal.db"
#: The cluster's databases: Temporal's store and its visibility.
DATABASES = (DATABASE, VISIBILITY_DATABASE)

#: The product's default (``config.settings``); the reliability Stack's own is 5 s.
PROVIDER_TIMEOUT_SECONDS = 15.0

#: ``CANCEL_WORKER_*`` that restore the Temporal SDK's own defaults (the "before").
SDK_DEFAULTS: dict[str, str] = {
    "CANCEL_WORKER_MAX_CACHED_WORKFLOWS": "1000",
    "CANCEL_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS": "",
    "CANCEL_WORKER_MAX_CONCURRENT_ACTIVITIES": "",
    "CANCEL_WORKER_WORKFLOW_TASK_POLLERS": "",
    "CANCEL_WORKER_ACTIVITY_TASK_POLLERS": "",
    "CANCEL_WORKER_SHARE_WORKFLOW_MODULES": "false",
}


#: The lanes' limits (``CANCEL_<PROVIDER>_MAX_CALLS_PER_SECOND``): tuning too.
LANE_LIMITS = frozenset(lane_limit_variable(provider) for provider in Provider)


def is_tuning(name: str) -> bool:
    """A worker setting a benchmark varies: ``CANCEL_WORKER_*`` and the lanes' limits."""
    return name.startswith("CANCEL_WORKER_") or name in LANE_LIMITS


def tuned(env: dict[str, str], tuning: dict[str, str]) -> dict[str, str]:
    """A worker's environment with its tuning (:func:`is_tuning`) replaced by ``tuning``;
    an empty value means "unset": the setting's default (the SDK's; no lane limit)."""
    base = {k: v for k, v in env.items() if not is_tuning(k)}
    return {**base, **{k: v for k, v in tuning.items() if v}}


class Deployment(Protocol):
    """What differs between targets: the processes of one private stack."""

    @property
    def address(self) -> str:
        """Temporal's frontend (``host:port``)."""
        ...

    @property
    def api_url(self) -> str: ...

    @property
    def api_token(self) -> str:
        """The HTTP API's all-scopes key."""
        ...

    def bare_worker_env(self) -> dict[str, str]:
        """Where :mod:`bench.bare` finds the server, the namespace, the sandbox's sTN
        and the codec keys."""
        ...

    async def start(self) -> None: ...

    def stop(self) -> None: ...

    def processes(self) -> Pids:
        """The named figures of the processes alive now (the bare worker's aside)."""
        ...

    def dead(self) -> list[str]:
        """Processes that exited by themselves, each with its log."""
        ...

    def admin(self) -> SandboxAdmin: ...

    async def restart_worker(self, env: dict[str, str]) -> None:
        """The product's worker again, with ``env`` as its tuning (:func:`tuned`)."""
        ...

    def database_bytes(self) -> int:
        """What Temporal's persistence takes on disk now: the dev server's SQLite file
        (with its write-ahead log), or the cluster's two PostgreSQL databases
        (``pg_database_size`` of the store and of visibility)."""
        ...


def _named(groups: dict[str, Iterable[Service | None]]) -> Pids:
    """Each figure's processes alive now; a figure with none is left out."""
    named = {}
    for name, processes in groups.items():
        pids = tuple(
            p.process.pid for p in processes if p is not None and p.process is not None and p.alive
        )
        if pids:
            named[name] = Processes(pids)
    return named


@dataclass
class Dev:
    """``make run``'s dev server, sandbox, worker (and API) on free ports."""

    stack: Stack
    api: bool

    @classmethod
    def create(cls, workdir: Path, *, api: bool, worker_env: dict[str, str]) -> Dev:
        stack = Stack(
            workdir,
            provider_timeout_seconds=PROVIDER_TIMEOUT_SECONDS,
            worker_env=worker_env,
            sandbox_state_file=False,
        )
        return cls(stack, api)

    @property
    def address(self) -> str:
        return self.stack.temporal_address

    @property
    def api_url(self) -> str:
        return self.stack.api_url

    @property
    def api_token(self) -> str:
        return self.stack.api_token

    def bare_worker_env(self) -> dict[str, str]:
        return dict(self.stack.cli_env)

    async def start(self) -> None:
        await self.stack.start(api=self.api)

    def stop(self) -> None:
        self.stack.stop()

    def processes(self) -> Pids:
        stack = self.stack
        return _named(
            {
                "worker": [stack.worker],
                "server": [stack.server],
                "sandbox": [stack.sandbox],
                "api": [stack.api],
            }
        )

    def dead(self) -> list[str]:
        return [f"{process.name} (log {process.log})" for process in self.stack.died()]

    def admin(self) -> SandboxAdmin:
        return self.stack.admin()

    async def restart_worker(self, env: dict[str, str]) -> None:
        await _restart(self.stack.worker, env)

    def database_bytes(self) -> int:
        database = self.stack.workdir / SQLITE_FILE
        files = (database, database.with_name(f"{SQLITE_FILE}-wal"))
        return sum(path.stat().st_size for path in files if path.exists())


@dataclass
class Cluster:
    """``make cluster``'s PostgreSQL and four Temporal services, the sandbox, one
    worker (and the API); no Web UI, no codec server."""

    stack: ClusterStack

    @classmethod
    def create(cls, workdir: Path, *, api: bool, worker_env: dict[str, str]) -> Cluster:
        # As root, PostgreSQL runs as its own system user: it must get through.
        workdir.chmod(0o755)
        # Worker and API metrics on free ports, as the dev Stack serves them.
        ports = replace(ClusterPorts.free(), worker_metrics=free_port(), api_metrics=free_port())
        stack = ClusterStack(
            workdir,
            ensure_server_binaries(ui=False),
            require_postgres(),
            ports,
            workers=1,
            api=api,
            sandbox_state_file=False,
            task_queue=TASK_QUEUE,
            provider_timeout_seconds=PROVIDER_TIMEOUT_SECONDS,
            worker_env=worker_env,
        )
        return cls(stack)

    @property
    def address(self) -> str:
        return self.stack.address

    @property
    def api_url(self) -> str:
        return self.stack.api_url

    @property
    def api_token(self) -> str:
        token = self.stack.api_token
        if token is None:
            raise RuntimeError("the cluster was started without a dev API key")
        return token

    def bare_worker_env(self) -> dict[str, str]:
        return self.stack.client_env()

    async def start(self) -> None:
        atexit.register(self.stack.stop)
        await self.stack.start()

    def stop(self) -> None:
        self.stack.stop()

    def processes(self) -> Pids:
        stack = self.stack
        named = _named(
            {
                "worker": stack.product_workers,
                "server": [stack.services[name] for name in TEMPORAL_SERVICES],
                "sandbox": [stack.sandbox],
                "api": [stack.http_api],
            }
        )
        postmaster = stack.postgres.pid
        if postmaster is not None and stack.postgres.alive:
            named["database"] = Processes.of(postmaster, with_children=True)
        return named

    def dead(self) -> list[str]:
        dead = [f"{service.name} (log {service.log})" for service in self.stack.died()]
        if not self.stack.postgres.alive:
            dead.append(f"PostgreSQL (log {self.stack.postgres.log})")
        return dead

    def admin(self) -> SandboxAdmin:
        return self.stack.admin()

    async def restart_worker(self, env: dict[str, str]) -> None:
        # Returns once the worker polls its task queue.
        await _restart(self.stack.product_workers[0], env)

    def database_bytes(self) -> int:
        names = ", ".join(f"'{name}'" for name in DATABASES)
        sql = f"SELECT sum(pg_database_size(datname)) FROM pg_database WHERE datname IN ({names})"
        return int(self.stack.postgres.psql(sql))


async def _restart(worker: Service, tuning: dict[str, str]) -> None:
    """Stop ``worker``, and start it again with ``tuning`` as its ``CANCEL_WORKER_*``."""
    await asyncio.to_thread(worker.stop)
    worker.env = tuned(worker.env, tuning)
    await asyncio.to_thread(worker.start)


class Create(Protocol):
    """How a target's :class:`Deployment` is made (under ``workdir``, not started)."""

    def __call__(self, workdir: Path, *, api: bool, worker_env: dict[str, str]) -> Deployment: ...


DEPLOYMENTS: dict[str, Create] = {"dev": Dev.create, "cluster": Cluster.create}
TARGETS = tuple(DEPLOYMENTS)


@dataclass
class Bench:
    """One running target as every benchmark sees it: its processes, the sandbox, the
    bare worker and a client (and the HTTP API's URL and key, for ``entrypoints.Api``)."""

    stack: Deployment
    bare_worker: Service
    client: Client
    target: str

    @property
    def pids(self) -> Pids:
        """The processes whose memory and CPU the benchmarks sample, by figure."""
        named = self.stack.processes()
        named.update(_named({"bare worker": [self.bare_worker]}))
        return named

    @property
    def api_url(self) -> str:
        return self.stack.api_url

    @property
    def api_token(self) -> str:
        return self.stack.api_token

    def admin(self) -> SandboxAdmin:
        return self.stack.admin()

    def reset_sandbox(self) -> None:
        """Forget every provider object and the call log (settings stay): the sandbox
        scans all its activations on every request, so each phase starts equal."""
        with self.admin() as admin:
            admin.reset()

    def check_alive(self) -> None:
        """Raise if a process died by itself (its log says why)."""
        dead = self.stack.dead()
        if self.bare_worker.died:
            dead.append(f"bare worker (log {self.bare_worker.log})")
        if dead:
            raise RuntimeError(f"died during the benchmark: {', '.join(dead)}")

    async def restart_worker(self, env: dict[str, str]) -> None:
        """The product's worker again, with ``env`` over its environment (tuning)."""
        await self.stack.restart_worker(env)

    def database_bytes(self) -> int:
        """Temporal's persistence on disk now (:meth:`Deployment.database_bytes`)."""
        return self.stack.database_bytes()

    def provider_calls(
        self, provider: str, method: str | None = None, path: str | None = None
    ) -> list[dict[str, Any]]:
        """The sandbox's call log of ``provider``: every request since the last reset,
        in order of arrival (``at``: when it reached the sandbox); ``path``: those whose
        path ends so."""
        with self.admin() as admin:
            calls = admin.calls(provider=provider, method=method)
        return [call for call in calls if path is None or str(call["path"]).endswith(path)]


@contextlib.asynccontextmanager
async def running(
    target: str = "dev", *, api: bool = False, worker_env: dict[str, str] | None = None
) -> AsyncIterator[Bench]:
    """Start ``target``; everything is stopped when the block ends."""
    create = DEPLOYMENTS.get(target)
    if create is None:
        raise ValueError(f"unknown target {target!r}; one of {', '.join(TARGETS)}")
    with tempfile.TemporaryDirectory(prefix=f"bench-{target}-") as workdir:
        stack = create(
            Path(workdir), api=api, worker_env={k: v for k, v in (worker_env or {}).items() if v}
        )
        bare_worker = Service(
            "bare worker",
            [sys.executable, "-m", "bench.bare"],
            stack.bare_worker_env(),
            Path(workdir) / "bare-worker.log",
            graceful=signal.SIGINT,
        )
        try:
            await stack.start()
            await asyncio.to_thread(bare_worker.start)
            client = await Client.connect(
                stack.address,
                namespace=NAMESPACE,
                data_converter=data_converter(),
                runtime=quiet_runtime(),
            )
            with stack.admin() as admin:
                # Terminations settle the moment they are due: a saga's first poll
                # after its wish date finds DONE, in the product and in the baseline.
                admin.configure(stn_processing_delay_seconds=0.0)
            yield Bench(stack, bare_worker, client, target)
        finally:
            bare_worker.stop()
            stack.stop()
