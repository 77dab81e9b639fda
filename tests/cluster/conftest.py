"""The cluster suite: the product on Temporal Server as four services on PostgreSQL.

One :class:`~stacks.cluster.stack.ClusterStack` for the whole session, as
``make cluster`` runs it but on free ports in a temporary directory: PostgreSQL
(``initdb`` + ``pg_ctl``), Temporal's ``history``, ``matching``, ``frontend`` and
``worker`` services as separate processes (``deploy/temporal/cluster.yaml``, 4 history
shards), the Web UI server, the provider sandbox, **two** worker processes on one task
queue and the HTTP API. Tests stop and restart its parts; every process is stopped at
the end, on failure too (and at interpreter exit at the latest).

Run serially (``make test-cluster``: ``pytest -p no:xdist tests/cluster``): the suite
owns its cluster, and its fault tests stop parts of it (under xdist it skips, saying
so). Skipped, with the reason, only when PostgreSQL's server binaries are not
installed; a missing Go toolchain (with no built server) is an error, as for the
Temporal CLI. ``make test-cluster`` builds the server before pytest starts: a build
inside the first test would count against its timeout.

What the sagas did is checked the way the reliability suite checks it
(``reliability.invariants``): every run's status against the sandbox's call log and
final state. The :class:`~tests.cluster.checks.Ledger` keeps, across the session,
every workflow id the tests started and the call log of each sandbox life (its log
starts empty after a restart).
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from random import Random

import pytest
from temporalio.client import Client

from config.settings import OrchestratorSettings
from config.temporal import data_converter
from config.temporal_server import ensure_server_binaries
from reliability.harness import PROVIDER_TIMEOUT_SECONDS, quiet_runtime
from reliability.workload import PlanFactory, Timing
from stacks.cluster.ports import ClusterPorts
from stacks.cluster.postgres import find_postgres
from stacks.cluster.stack import ClusterStack
from tests.cluster.checks import Ledger

WORKERS = 2
#: Lines the session prints at the end (``pytest_terminal_summary``): what each fault
#: test did and found, the figures the issue asks for.
FIGURES: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("cluster suite figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def cluster_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A fresh directory, readable by the ``postgres`` user when run as root; kept for
    a look when a test failed, removed otherwise."""
    directory = Path(tempfile.mkdtemp(prefix="co-cluster-"))
    directory.chmod(0o755)
    yield directory
    if request.session.testsfailed:
        print(f"\ncluster suite: logs and data kept in {directory}")
    else:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def reachable_dir() -> Iterator[Path]:
    """A temporary directory the ``postgres`` user can enter (pytest's ``tmp_path``
    lives under a directory only its owner may enter)."""
    directory = Path(tempfile.mkdtemp(prefix="co-cluster-test-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
async def cluster(cluster_dir: Path) -> AsyncIterator[ClusterStack]:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip(
            "the cluster suite runs serially, one cluster per session: make test-cluster "
            "(pytest -p no:xdist tests/cluster)"
        )
    postgres = find_postgres()
    if postgres is None:
        pytest.skip(
            "PostgreSQL is not installed (apt-get install postgresql: initdb, pg_ctl, postgres, "
            "psql); the cluster suite runs Temporal on it"
        )
    stack = ClusterStack(
        cluster_dir,
        ensure_server_binaries(ui=True),
        postgres,
        ClusterPorts.free(),
        workers=WORKERS,
        sandbox_env={
            # Every worker (re)start fetches an Airalo token: lift the sandbox's limit.
            "SANDBOX_AIRALO_TOKEN_RATE_LIMIT_PER_MINUTE": "1000",
            "SANDBOX_STN_PROCESSING_DELAY_SECONDS": "1.0",
        },
        # Each provider call's HTTP timeout, as in the reliability suite.
        provider_timeout_seconds=PROVIDER_TIMEOUT_SECONDS,
    )
    atexit.register(stack.stop)
    await stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
async def cluster_client(cluster: ClusterStack) -> Client:
    return await Client.connect(
        cluster.address,
        namespace="default",
        data_converter=data_converter(),
        runtime=quiet_runtime(),
    )


@pytest.fixture(scope="session")
def ledger() -> Ledger:
    return Ledger()


@pytest.fixture(scope="session")
def plans() -> PlanFactory:
    """Plans with provider ids unique to this session."""
    tag = f"cl{secrets.token_hex(2)}"
    return PlanFactory(Random(tag), tag, Timing())


@pytest.fixture(scope="session")
def orchestrator_settings() -> OrchestratorSettings:
    return OrchestratorSettings()
