"""The real worker process (``python worker.py``, as ``make run`` starts it) on a
test's task queue, against the test dev server and sandbox: for tests that kill a
worker, read its log or scrape its metrics."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client

from tests.conftest import SandboxEndpoint
from tests.helpers import eventually_sync

ROOT = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 30.0


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no shutdown, calls in flight are lost with the process."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


@contextlib.contextmanager
def worker_process(
    client: Client, sandbox: SandboxEndpoint, task_queue: str, **env: str
) -> Iterator[WorkerProcess]:
    """Start the worker (its stderr, the log, to a file); yield once it polls (its log
    says so); stop it (SIGTERM, then SIGKILL) at the end."""
    log = Path(tempfile.gettempdir()) / f"co-worker-{os.getpid()}-{uuid.uuid4().hex[:8]}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "worker.py"],
            cwd=ROOT,
            env={
                **os.environ,
                "TEMPORAL_ADDRESS": client.service_client.config.target_host,
                "TEMPORAL_NAMESPACE": client.namespace,
                "CANCEL_TASK_QUEUE": task_queue,
                "STN_BASE_URL": sandbox.stn_url,
                "REBILLY_BASE_URL": sandbox.rebilly_url,
                "AIRALO_BASE_URL": sandbox.airalo_url,
                **env,
            },
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    running = WorkerProcess(process, log)

    def polling() -> None:
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited during startup:\n{running.output()}")
        assert "Worker polling task queue" in running.output()

    try:
        eventually_sync(polling, within=STARTUP_SECONDS)
        yield running
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.unlink(missing_ok=True)
