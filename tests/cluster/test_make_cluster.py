"""``make cluster`` itself (``python -m starter.cluster``): the banner, Ctrl-C stopping
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
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from config.temporal import data_converter
from reliability.harness import quiet_runtime
from starter.cluster.ports import ClusterPorts, free_port
from starter.cluster.process import ROOT
from tests.helpers import eventually, result_of

pytestmark = pytest.mark.cluster

STARTUP_SECONDS = 240.0  # the first run may build the Web UI server (~30 s warm)
STOP_SECONDS = 90.0


class Foreground:
    """``make cluster`` in a terminal: its output collected line by line."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "starter.cluster"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    async def wait_for(self, text: str, within: float) -> None:
        async def shown() -> None:
            if text not in self.output and self.process.poll() is not None:
                raise RuntimeError(f"exited {self.process.returncode}:\n{self.output[-3000:]}")
            assert text in self.output, self.output[-3000:]

        await eventually(shown, within=within, interval=0.5)

    def ctrl_c(self) -> int:
        """SIGINT, as the terminal sends it on Ctrl-C; the exit code."""
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=STOP_SECONDS)
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


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


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


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
    first = Foreground(env)
    try:
        await first.wait_for("Ctrl-C stops everything.", STARTUP_SECONDS)
        banner = first.output
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

        assert first.ctrl_c() == 0
        stopping = [line.strip() for line in first.lines if line.strip().startswith("stopping")]
        assert stopping[0] == "stopping HTTP API..." and stopping[-1] == "stopping PostgreSQL..."
        assert stopping.index("stopping worker 2...") < stopping.index("stopping sandbox...")
        assert stopping.index("stopping Temporal frontend...") < stopping.index(
            "stopping Temporal history..."
        )
        assert "stopped; saga state is kept in PostgreSQL" in first.output
        assert not [port for port, _name in ports.listening() if listening(port)]
    finally:
        first.kill()

    second = Foreground(env)
    try:
        await second.wait_for("Ctrl-C stops everything.", STARTUP_SECONDS)
        client = await Client.connect(
            ports.frontend_address,
            namespace="default",
            data_converter=data_converter(),
            runtime=quiet_runtime(),
        )
        final = await asyncio.wait_for(result_of(client, workflow_id), timeout=120)
        assert final["phase"] == "COMPLETED"
        assert second.ctrl_c() == 0
    finally:
        second.kill()


async def test_ctrl_c_during_start_up_leaves_nothing_running(
    data_dir: Path, cluster: object
) -> None:
    ports = ClusterPorts.free()
    env = environment(ports, data_dir / "cluster")
    pid_file = data_dir / "cluster" / "postgres" / "data" / "postmaster.pid"
    starting = Foreground(env)
    try:

        async def postgres_up() -> None:
            assert starting.process.poll() is None, starting.output
            assert pid_file.is_file()

        # PostgreSQL is up, the rest is still starting.
        await eventually(postgres_up, within=STARTUP_SECONDS, interval=0.05)
        assert "Ctrl-C stops everything." not in starting.output

        assert starting.ctrl_c() == 130
        assert not pid_file.exists()
        assert not [port for port, _name in ports.listening() if listening(port)]
    finally:
        starting.kill()
