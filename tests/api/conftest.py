"""The HTTP API as it runs: ``python -m starter.api`` (uvicorn) on a free port.

Each pytest process (each xdist worker) runs one API process, pointed at the
test dev server and at one task queue (``task_queue`` is session-scoped here, so
the per-test ``worker`` fixture serves the queue the API starts sagas on; tests
keep apart by ``uid``). One process per worker rather than per module keeps the
load on a 2-core machine low for the timing-sensitive tests running beside these. Three API keys
with different scopes are configured; their tokens are made per run.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from sandbox.settings import SandboxSettings
from tests.helpers import eventually_sync

ROOT = Path(__file__).parent.parent.parent
STARTUP_SECONDS = 30.0

ADMIN_TOKEN = secrets.token_urlsafe(24)
READER_TOKEN = secrets.token_urlsafe(24)
EVENTS_TOKEN = secrets.token_urlsafe(24)
BILLING_TOKEN = secrets.token_urlsafe(24)
# The sandbox signs Airalo webhooks with its Airalo client secret.
AIRALO_WEBHOOK_SECRET = SandboxSettings().airalo_client_secret
REBILLY_WEBHOOK_USERNAME = "rebilly-hooks"
REBILLY_WEBHOOK_PASSWORD = secrets.token_urlsafe(18)
API_KEYS = [
    {
        "name": "admin",
        "token": ADMIN_TOKEN,
        "scopes": ["events:write", "sagas:write", "sagas:read", "subscriptions:write"],
    },
    {"name": "dashboard", "token": READER_TOKEN, "scopes": ["sagas:read"]},
    {"name": "crm-events", "token": EVENTS_TOKEN, "scopes": ["events:write"]},
    {"name": "billing", "token": BILLING_TOKEN, "scopes": ["sagas:write"]},
]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class ApiProcess:
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_api(**env: str) -> ApiProcess:
    """Start ``python -m starter.api`` and wait (with a deadline) until /healthz answers."""
    port = free_port()
    log = Path(tempfile.gettempdir()) / f"co-api-{os.getpid()}-{uuid.uuid4().hex[:8]}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "starter.api"],
            cwd=ROOT,
            env={
                **os.environ,
                "CANCEL_API_HOST": "127.0.0.1",
                "CANCEL_API_PORT": str(port),
                "CANCEL_API_KEYS": json.dumps(API_KEYS),
                **env,
            },
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    api = ApiProcess(f"http://127.0.0.1:{port}", process, log)

    def healthy() -> None:
        if process.poll() is not None:
            raise RuntimeError(f"the API exited during startup:\n{api.output()}")
        try:
            answer = httpx.get(f"{api.base_url}/healthz", timeout=1.0).status_code
        except httpx.TransportError as error:
            raise AssertionError(f"not answering yet: {error}") from None
        assert answer == 200, answer

    try:
        eventually_sync(healthy, within=STARTUP_SECONDS)
    except AssertionError:
        api.stop()
        raise RuntimeError(
            f"the API did not answer within {STARTUP_SECONDS}s:\n{api.output()}"
        ) from None
    return api


@pytest.fixture(scope="session")
def task_queue() -> str:
    """One queue for the API tests of this process: the API starts sagas on it."""
    return f"test-api-{uuid.uuid4()}"


@pytest.fixture(scope="session")
def api(temporal_env: WorkflowEnvironment, task_queue: str) -> Iterator[ApiProcess]:
    client = temporal_env.client
    process = start_api(
        TEMPORAL_ADDRESS=client.service_client.config.target_host,
        TEMPORAL_NAMESPACE=client.namespace,
        CANCEL_TASK_QUEUE=task_queue,
        CANCEL_API_AIRALO_WEBHOOK_SECRET=AIRALO_WEBHOOK_SECRET,
        CANCEL_API_REBILLY_WEBHOOK_USERNAME=REBILLY_WEBHOOK_USERNAME,
        CANCEL_API_REBILLY_WEBHOOK_PASSWORD=REBILLY_WEBHOOK_PASSWORD,
    )
    yield process
    process.stop()
    if "Traceback" in process.output():
        print(process.output())  # shown with a failing test's report
    process.log.unlink(missing_ok=True)


@pytest.fixture
async def http(api: ApiProcess) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the API with the all-scopes key."""
    async with httpx.AsyncClient(
        base_url=api.base_url, headers=bearer(ADMIN_TOKEN), timeout=30.0
    ) as client:
        yield client
