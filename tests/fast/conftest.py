"""The fast tier: the real workflows on the real dev server, every activity mocked.

Workflow logic only (compensation orders, operator requests, validators, edge
timings); what the providers' HTTP does is the end-to-end tests' job (tests/*.py
against the sandbox). No test here waits on a provider; the few that wait on a
durable timer keep it a second or two and say why.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from tests.fast.fakes import FakeProviders
from worker import WORKFLOWS


@pytest.fixture
def fakes() -> FakeProviders:
    return FakeProviders()


@pytest.fixture
async def fake_worker(
    client: Client, task_queue: str, fakes: FakeProviders
) -> AsyncIterator[Worker]:
    """The production workflows on a fresh queue, every activity answered by ``fakes``."""
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=fakes.activities(),
    ) as running:
        yield running
