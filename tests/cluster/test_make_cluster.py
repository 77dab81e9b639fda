"""``make cluster`` itself (``python -m stacks.cluster``): the banner, Ctrl-C stopping
everything in order, and a second start on the same directory finding the sagas.

It runs beside the session's cluster, on ports of its own and in a directory of its own.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from config.temporal import data_converter
from reliability.harness import quiet_runtime
from stacks.cluster.ports import ClusterPorts
from stacks.ports import free_port, port_is_open
from stacks.service import Service
from tests.helpers import eventually, result_of

pytestmark = pytest.mark.cluster

STARTUP_SECONDS = 240.0  # the first run may build the Web UI server (~30 s warm)
STOP_SECONDS = 90.0
BANNER_END = "Ctrl-C stops everything."


def make_cluster(env: dict[str, str], log: Path, *, until_banner: bool) -> Service:
    """``make cluster`` as in a terminal (Ctrl-C is its SIGINT), its output in ``log``;
    started, it is awaited until its banner ends when ``until_banner``."""
    return Service(
        "make cluster",
        [sys.executable, "-m", "stacks.cluster"],
        env,
        log,
        ready_line=BANNER_END if until_banner else None,
        graceful=signal.SIGINT,
        startup_seconds=STARTUP_SECONDS,
        stop_seconds=STOP_SECONDS,
    )


def two_free_ports(taken: set[int]) -> int:
    """A port whose successor is free too (the second worker's metrics)."""
    while True:
        port = free_port(taken)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        taken.add(port + 1)
        return port


def environment(ports: ClusterPorts, data_dir: Path) -> dict[str, str]:
    taken: set[int] = set()
    return {
        **os.environ,
        **ports.temporal_env(),
        "CLUSTER_DATA_DIR": str(data_dir),
        "CLUSTER_WORKERS": "2",
        "CLUSTER_POSTGRES_PORT": str(ports.postgres),
        "TEMPORAL_UI_PORT": str(ports.ui),
        "SANDBOX_PORT": str(ports.sandbox),
        "CANCEL_API_PORT": str(ports.api),
        "CANCEL_CODEC_SERVER_PORT": str(ports.codec),
        "CLUSTER_WORKER_METRICS_PORT": str(two_free_ports(taken)),
        "CLUSTER_API_METRICS_PORT": str(free_port(taken)),
        "CANCEL_LOG_FORMAT": "json",
    }


@pytest.fixture
def data_dir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="co-make-cluster-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


async def test_make_cluster_banner_ctrl_c_and_a_second_start_keeps_the_sagas(
    data_dir: Path, cluster: object
) -> None:
    # ``cluster``: the suite's own is up (and the binaries built) before this one starts.
    ports = ClusterPorts.free()
    env = environment(ports, data_dir / "cluster")
    first = make_cluster(env, data_dir / "first.log", until_banner=True)
    try:
        await asyncio.to_thread(first.start)
        banner = first.output()
        assert f"PostgreSQL        127.0.0.1:{ports.postgres}" in banner
        assert (
            f"Temporal services frontend :{ports.frontend.grpc}, history :{ports.history.grpc}, "
            f"matching :{ports.matching.grpc}, worker :{ports.worker.grpc}"
        ) in banner
        assert "Workers           2 processes on one task queue" in banner
        assert (
            f"Temporal Web UI   http://127.0.0.1:{ports.ui}/namespaces/default/workflows" in banner
        )
        assert f"TEMPORAL_ADDRESS=127.0.0.1:{ports.frontend.grpc} .venv/bin/cancelctl" in banner
        key = re.search(r"API dev key\s+(\S+)", banner)
        assert key, banner

        # A saga through the banner's API and key, due after the restart below.
        wish = (datetime.now(UTC) + timedelta(seconds=40)).replace(microsecond=0)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports.api}") as http:
            answer = await http.post(
                "/v1/line-terminations",
                json={"subscriptionId": "SUB-MAKE-CLUSTER", "wishDate": wish.isoformat()},
                headers={"Authorization": f"Bearer {key.group(1)}"},
            )
        assert answer.status_code == 202, answer.text
        workflow_id = answer.json()["workflowId"]

        assert first.stop() == 0
        lines = first.output().splitlines()
        stopping = [line.strip() for line in lines if line.strip().startswith("stopping")]
        assert stopping[0] == "stopping HTTP API..." and stopping[-1] == "stopping PostgreSQL..."
        assert stopping.index("stopping worker 2...") < stopping.index("stopping sandbox...")
        assert stopping.index("stopping Temporal frontend...") < stopping.index(
            "stopping Temporal history..."
        )
        assert "stopped; saga state is kept in PostgreSQL" in first.output()
        assert not [port for port, _name in ports.listening() if port_is_open(port)]
    finally:
        first.kill()

    second = make_cluster(env, data_dir / "second.log", until_banner=True)
    try:
        await asyncio.to_thread(second.start)
        client = await Client.connect(
            ports.frontend_address,
            namespace="default",
            data_converter=data_converter(),
            runtime=quiet_runtime(),
        )
        final = await asyncio.wait_for(result_of(client, workflow_id), timeout=120)
        assert final["phase"] == "COMPLETED"
        assert second.stop() == 0
    finally:
        second.kill()


async def test_ctrl_c_during_start_up_leaves_nothing_running(
    data_dir: Path, cluster: object
) -> None:
    ports = ClusterPorts.free()
    env = environment(ports, data_dir / "cluster")
    pid_file = data_dir / "cluster" / "postgres" / "data" / "postmaster.pid"
    starting = make_cluster(env, data_dir / "starting.log", until_banner=False)
    try:
        starting.start()

        async def postgres_up() -> None:
            assert starting.alive, starting.output()
            assert pid_file.is_file()

        # PostgreSQL is up, the rest is still starting.
        await eventually(postgres_up, within=STARTUP_SECONDS, interval=0.05)
        assert BANNER_END not in starting.output()

        assert starting.stop() == 130
        assert not pid_file.exists()
        assert not [port for port, _name in ports.listening() if port_is_open(port)]
    finally:
        starting.kill()
