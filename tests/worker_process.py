"""The real worker process (``python worker.py``, as ``make run`` starts it) on a
test's task queue, against the test dev server and sandbox: for tests that kill a
worker, read its log or scrape its metrics."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from temporalio.client import Client

from stacks.environment import Role, Wiring, environment
from stacks.product import WORKER_READY_LINE
from stacks.service import Service
from tests.conftest import SandboxEndpoint

STARTUP_SECONDS = 30.0


@contextlib.contextmanager
def worker_process(
    client: Client, sandbox: SandboxEndpoint, task_queue: str, **env: str
) -> Iterator[Service]:
    """Start the worker (its output, the log, to a file); yield once it polls (its log
    says so); stop it (SIGINT, then SIGKILL) at the end.

    It runs as a version of a Worker Deployment of the test's task queue (a deployment
    per test: the shared dev server's tests never route to each other's workers), made
    current once it polls, as a local stack's worker is; ``env`` may say otherwise
    (``CANCEL_DEPLOYMENT_*``, ``config/deployment.py``).
    """
    env = {"CANCEL_DEPLOYMENT_NAME": f"co-{task_queue}", **env}
    log = Path(tempfile.gettempdir()) / f"co-worker-{os.getpid()}-{uuid.uuid4().hex[:8]}.log"
    wiring = Wiring(
        temporal_address=client.service_client.config.target_host,
        sandbox_url=sandbox.base_url,
        namespace=client.namespace,
        task_queue=task_queue,
    )
    worker = Service(
        "worker",
        [sys.executable, "worker.py"],
        environment(wiring, Role.WORKER, extra=env),
        log,
        ready_line=WORKER_READY_LINE,
        graceful=signal.SIGINT,
        startup_seconds=STARTUP_SECONDS,
    )
    try:
        worker.start()
        yield worker
    finally:
        worker.stop()
        log.unlink(missing_ok=True)
