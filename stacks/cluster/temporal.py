"""Temporal Server as four services on PostgreSQL: schema, processes, namespace.

- :func:`setup_schema`: Temporal's own schema tool (``sql``, same version as the
  server) creates both databases if missing and brings their schema to the
  server's version; every step is idempotent, so it runs on every start.
- :func:`service`: one service (``frontend``, ``history``, ``matching``,
  ``worker``) as a process of its own, configured by ``deploy/temporal/cluster.yaml``.
- :func:`register_namespace`: the ``default`` namespace and our search attributes
  (``domain.search_attributes``), through the frontend's own API (what
  ``temporal operator namespace create`` / ``search-attribute create`` call), then
  waits until a visibility query using every one of them is accepted.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType
from temporalio.service import RPCError, RPCStatusCode

from domain import search_attributes as sa
from stacks.cluster.ports import ServicePorts
from stacks.service import ROOT, Service

CONFIG_DIR = ROOT / "deploy" / "temporal"
CONFIG_ENV = "cluster"
DYNAMIC_CONFIG = CONFIG_DIR / "dynamicconfig.yaml"
PLUGIN = "postgres12"
DATABASE = "temporal"
VISIBILITY_DATABASE = "temporal_visibility"
SCHEMAS = {DATABASE: "postgresql/v12/temporal", VISIBILITY_DATABASE: "postgresql/v12/visibility"}
NAMESPACE = "default"
RETENTION = timedelta(days=3)
REGISTER_SECONDS = 120.0

T = TypeVar("T")


@dataclass(frozen=True)
class PostgresLogin:
    """Where Temporal finds PostgreSQL and as whom; :attr:`dsn` is what the config reads."""

    host: str
    port: int
    user: str
    password: str

    @property
    def dsn(self) -> str:
        """``postgres://user:password@host:port``: the template does not percent-decode,
        so the password must be URL-safe (ours is ``secrets.token_hex``)."""
        if quote(self.password, safe="") != self.password:
            raise ValueError("the PostgreSQL password must be URL-safe for TEMPORAL_POSTGRES_DSN")
        return f"postgres://{self.user}:{self.password}@{self.host}:{self.port}"


def setup_schema(sql_tool: Path, login: PostgresLogin, log: Path) -> None:
    """Create the default store's and visibility's databases and bring both schemas to
    the tool's (= the server's) version; the password goes through the environment."""
    env = {"SQL_PASSWORD": login.password, "PATH": "/usr/bin:/bin"}
    connect = [
        str(sql_tool),
        "--plugin",
        PLUGIN,
        "--endpoint",
        login.host,
        "--port",
        str(login.port),
        "--user",
        login.user,
    ]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        for database, schema in SCHEMAS.items():
            for step in (
                ["create-database"],
                ["setup-schema", "--version", "0.0"],
                ["update-schema", "--schema-name", schema],
            ):
                argv = [*connect, "--database", database, *step]
                out.write(f"\n--- {' '.join(argv[1:])}\n".encode())
                out.flush()
                result = subprocess.run(
                    argv, env=env, stdout=out, stderr=subprocess.STDOUT, check=False, timeout=120
                )
                if result.returncode != 0:
                    raise RuntimeError(
                        f"schema setup failed: `sql {step[0]}` on {database} exited "
                        f"{result.returncode}; see {log}"
                    )


def ready_port(name: str, ports: ServicePorts) -> int:
    """Where a service is seen to be up: its gRPC port; the ``worker`` service (Temporal's
    own background work, not ours) serves no gRPC, only its membership port."""
    return ports.membership if name == "worker" else ports.grpc


def service(name: str, server: Path, env: dict[str, str], log: Path, port: int) -> Service:
    """One Temporal service in its own process (it stops cleanly on SIGTERM)."""
    return Service(
        name=f"Temporal {name}",
        argv=[
            str(server),
            "--root",
            str(ROOT),
            "--config",
            str(CONFIG_DIR.relative_to(ROOT)),
            "--env",
            CONFIG_ENV,
            "--allow-no-auth",
            "start",
            "--service",
            name,
        ],
        env=env,
        log=log,
        port=port,
    )


async def _patiently(call: Callable[[], Awaitable[T]], what: str, deadline: float) -> T:
    """Retry ``call`` while the cluster is still coming up (unavailable, not yet
    knowing the namespace), until ``deadline`` (monotonic)."""
    while True:
        try:
            return await call()
        except RPCError as error:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: {error.status.name}: {error.message}") from error
        await asyncio.sleep(0.5)


def _probe_query() -> str:
    """A visibility query naming every search attribute (each with a value of its type)."""
    samples = {
        SearchAttributeIndexedValueType.KEYWORD: "'-'",
        SearchAttributeIndexedValueType.KEYWORD_LIST: "'-'",
        SearchAttributeIndexedValueType.DATETIME: "'2000-01-01T00:00:00Z'",
    }
    return " AND ".join(f"{key.name} = {samples[key.indexed_value_type]}" for key in sa.ALL)


async def register_namespace(address: str, namespace: str = NAMESPACE) -> None:
    """Create ``namespace`` and our search attributes if missing (a second start finds
    them), and wait until both are usable."""
    deadline = time.monotonic() + REGISTER_SECONDS
    client = await _patiently(
        lambda: Client.connect(address, namespace=namespace), "connect", deadline
    )

    async def register() -> None:
        try:
            await client.workflow_service.register_namespace(
                RegisterNamespaceRequest(
                    namespace=namespace,
                    workflow_execution_retention_period=Duration(
                        seconds=int(RETENTION.total_seconds())
                    ),
                )
            )
        except RPCError as error:
            if error.status != RPCStatusCode.ALREADY_EXISTS:
                raise

    await _patiently(register, f"register namespace {namespace}", deadline)

    async def add_search_attributes() -> None:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
        have = dict(listed.custom_attributes)
        missing: dict[str, IndexedValueType.ValueType] = {}
        for key in sa.ALL:
            wanted = IndexedValueType.ValueType(int(key.indexed_value_type))
            if key.name not in have:
                missing[key.name] = wanted
            elif have[key.name] != wanted:
                raise RuntimeError(
                    f"search attribute {key.name} exists as "
                    f"{IndexedValueType.Name(have[key.name])}, not "
                    f"{IndexedValueType.Name(wanted)}"
                )
        if missing:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(search_attributes=missing, namespace=namespace)
            )

    await _patiently(add_search_attributes, "add search attributes", deadline)
    query = _probe_query()
    await _patiently(lambda: client.count_workflows(query), "visibility query", deadline)
