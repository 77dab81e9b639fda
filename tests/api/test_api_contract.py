"""The API keeps its own OpenAPI document: Schemathesis, every check, finds nothing.

The real API process (uvicorn, in a namespace of its own) with a real worker behind
it on the test dev server and sandbox; Schemathesis 4 as an integrator runs it
(``reliability.api_contract``: every check, every phase, ``reliability/schemathesis.toml``),
bounded: a few examples per operation, a fixed seed. ``make reliability`` runs the
same with many more (its ``api-contract`` scenario).

Besides "nothing found", what this run must have reached: every operation of the
document, sagas started, Airalo's and Rebilly's webhooks past their credentials (and
refused without), and every answer as the hand-written fuzz this replaces asserted:
never a 5xx, every 422 with its problems, each exactly a field and a rule.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from config.temporal import data_converter
from reliability import api_contract
from stacks.cluster.temporal import register_namespace
from tests.api.conftest import (
    ADMIN_TOKEN,
    AIRALO_WEBHOOK_SECRET,
    REBILLY_WEBHOOK_PASSWORD,
    REBILLY_WEBHOOK_USERNAME,
    ApiProcess,
    start_api,
)
from tests.conftest import TestSandbox, product_worker
from worker import ProductWorkers

DOCUMENT = json.loads((Path(__file__).parents[2] / "docs" / "openapi.json").read_text())
#: Per operation and phase: a handful, so that the run stays well under a minute.
EXAMPLES = 10
SEED = 22
#: Stops Schemathesis if it ever runs away (a bound, not a timing the test asserts).
WITHIN_SECONDS = 240.0
QUEUE = "contract"


@pytest.fixture(scope="module")
async def contract_namespace(temporal_env: WorkflowEnvironment) -> str:
    """A namespace of its own: the fuzz lists and reads every saga it can see, and a
    saga of another test, whose worker has gone, would answer nothing (503)."""
    namespace = f"contract-{uuid.uuid4().hex[:12]}"
    await register_namespace(temporal_env.client.service_client.config.target_host, namespace)
    return namespace


@pytest.fixture(scope="module")
def contract_api(
    temporal_env: WorkflowEnvironment, contract_namespace: str
) -> Iterator[ApiProcess]:
    client = temporal_env.client
    process = start_api(
        TEMPORAL_ADDRESS=client.service_client.config.target_host,
        TEMPORAL_NAMESPACE=contract_namespace,
        CANCEL_TASK_QUEUE=QUEUE,
        CANCEL_API_AIRALO_WEBHOOK_SECRET=AIRALO_WEBHOOK_SECRET,
        CANCEL_API_REBILLY_WEBHOOK_USERNAME=REBILLY_WEBHOOK_USERNAME,
        CANCEL_API_REBILLY_WEBHOOK_PASSWORD=REBILLY_WEBHOOK_PASSWORD,
    )
    yield process
    process.stop()
    assert "Traceback" not in process.output(), process.output()
    process.log.unlink(missing_ok=True)


@pytest.fixture
async def contract_worker(
    temporal_env: WorkflowEnvironment, sandbox: TestSandbox, contract_namespace: str
) -> AsyncIterator[ProductWorkers]:
    address = temporal_env.client.service_client.config.target_host
    client = await Client.connect(
        address, namespace=contract_namespace, data_converter=data_converter()
    )
    async with product_worker(client, sandbox, QUEUE) as running:
        yield running


def operations() -> list[str]:
    return [
        f"{method.upper()} {path}"
        for path, methods in DOCUMENT["paths"].items()
        for method in methods
        if method in {"get", "head", "post", "put", "patch", "delete"}
    ]


async def test_schemathesis_finds_nothing_against_the_document(
    contract_api: ApiProcess, contract_worker: ProductWorkers, tmp_path: Path
) -> None:
    credentials = api_contract.Credentials(
        api_key=ADMIN_TOKEN,
        airalo_secret=AIRALO_WEBHOOK_SECRET,
        rebilly_username=REBILLY_WEBHOOK_USERNAME,
        rebilly_password=REBILLY_WEBHOOK_PASSWORD,
    )

    # A thread: Schemathesis runs as a process while the worker serves the sagas here.
    result = await asyncio.to_thread(
        api_contract.run,
        contract_api.base_url,
        credentials,
        examples=EXAMPLES,
        seed=SEED,
        workdir=tmp_path,
        within=WITHIN_SECONDS,
    )
    print(result.summary())

    assert result.clean, result.output
    assert result.operations == len(operations())
    assert {result.phases[phase] for phase in ("coverage", "fuzzing", "stateful")} == {"success"}
    assert result.started, "the fuzz started no saga: it never got past the edge"
    airalo = result.answers["POST /v1/webhooks/airalo"]
    rebilly = result.answers["POST /v1/webhooks/rebilly"]
    assert airalo[200] and airalo[401], airalo  # signed: routed; unsigned: refused
    assert rebilly[200] and rebilly[401], rebilly
    statuses = {status for answers in result.answers.values() for status in answers}
    assert all(status < 500 for status in statuses), result.answers
    assert result.invalid_answers
    for text in result.invalid_answers:
        detail = json.loads(text)["detail"]
        assert detail and all(set(problem) == {"field", "rule"} for problem in detail), text
