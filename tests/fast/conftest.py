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

from tests.fast.fakes import FakeProviders
from worker import ProductWorkers, ProviderClients, build_worker


@pytest.fixture
def fakes() -> FakeProviders:
    return FakeProviders()


@pytest.fixture
async def fake_worker(
    client: Client, task_queue: str, fakes: FakeProviders
) -> AsyncIterator[ProductWorkers]:
    """The production workflows on a fresh queue, with their lanes, every activity
    answered by ``fakes``."""
    clients = ProviderClients.of(fakes.activities())
    async with build_worker(client, task_queue, clients) as running:
        yield running
