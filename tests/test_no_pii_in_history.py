"""What the Temporal server holds carries no phone number, API key or token.

Sagas of every kind run with real PII and real (sandbox) credentials; then a
client WITHOUT the codec reads what the server stores (every history event, the
run's search attributes, memo and user metadata, the workflow id) as raw protobuf
bytes, in which a clear-text value would show as itself (base64 in proto-JSON
would hide it, so the scan is over the wire bytes).
"""

from __future__ import annotations

import base64
import json
import os
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import Client

from config.settings import (
    AiraloSettings,
    OrchestratorSettings,
    RebillySettings,
    StnSettings,
)
from config.temporal import converter_with
from domain.common import SagaKind
from domain.stn import TerminationRequest
from sandbox.testing import SandboxAdmin
from starter import sagas
from tests.helpers import result_of
from tests.test_customer_churn import Parts, days
from worker import ProductWorkers

TERMINATE = "/api/TerminateSubscription"


def random_phone() -> tuple[str, str]:
    """A Dutch mobile number as a caller writes it, and its 8 subscriber digits."""
    digits = f"{random.randrange(10**8):08d}"
    return f"06{digits}", digits


async def stored_bytes(client: Client, workflow_id: str) -> bytes:
    """Everything the server keeps about the run, as a codec-less client reads it."""
    raw = await Client.connect(
        client.service_client.config.target_host,
        namespace=client.namespace,
        data_converter=converter_with(None),
    )
    handle = raw.get_workflow_handle(workflow_id)
    history = await handle.fetch_history()
    description = await handle.describe()
    return b"".join(
        [workflow_id.encode(), description.raw_description.SerializeToString()]
        + [event.SerializeToString() for event in history.events]
    )


def secrets_of_this_process() -> dict[str, bytes]:
    """Provider credentials, the workflow-id key and the payload keys, raw and base64."""
    values = {
        "sTN API key": StnSettings().api_key.get_secret_value(),
        "Rebilly API key": RebillySettings().api_key.get_secret_value(),
        "Airalo client secret": AiraloSettings().client_secret.get_secret_value(),
        "workflow id key": OrchestratorSettings().workflow_id_key.get_secret_value(),
    }
    found = {name: value.encode() for name, value in values.items()}
    for key_id, key in json.loads(os.environ["CANCEL_CODEC_KEYS"]).items():
        found[f"codec key {key_id} (base64)"] = key.encode()
        found[f"codec key {key_id} (raw)"] = base64.b64decode(key)
    return found


def assert_clean(stored: bytes, pii: dict[str, str]) -> None:
    leaks = [name for name, value in pii.items() if value.encode() in stored]
    leaks += [name for name, value in secrets_of_this_process().items() if value in stored]
    leaks += ["a bearer token"] if b"Bearer " in stored else []
    assert not leaks, f"found in clear on the server: {leaks}"


async def test_a_line_termination_by_phone_number_leaves_no_pii_on_the_server(
    client: Client, worker: ProductWorkers, settings: OrchestratorSettings, uid: str
) -> None:
    number, digits = random_phone()
    customer = f"CUST-{uid}"
    started = await sagas.start(
        client,
        SagaKind.LINE_TERMINATION,
        TerminationRequest(phone_number=number, customer_id=customer),
        settings,
    )
    assert (await result_of(client, started.workflow_id))["phase"] == "COMPLETED"

    stored = await stored_bytes(client, started.workflow_id)

    assert_clean(stored, {"phone number": digits})
    # Search attributes stay in clear by design: the customer id is there, which is
    # what shows the scan reads the stored bytes at all.
    assert customer.encode() in stored


@pytest.mark.own_sandbox
async def test_a_provider_rejection_quoting_the_number_is_not_stored_in_clear(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
) -> None:
    """A failure's message lands in history: the provider's text echoing PII must not."""
    number, digits = random_phone()
    sandbox_admin.add_fault(
        provider="stn",
        method="POST",
        path=TERMINATE,
        mode="error",
        status=422,
        body={"responseStatus": {"errorCode": "Refused", "message": f"line {number} is barred"}},
        count=1,
    )
    started = await sagas.start(
        client, SagaKind.LINE_TERMINATION, TerminationRequest(phone_number=number), settings
    )
    final = await result_of(client, started.workflow_id)
    # The saga itself (through the codec) still reads the provider's words.
    assert final["phase"] == "FAILED" and "is barred" in final["lastError"]

    assert_clean(await stored_bytes(client, started.workflow_id), {"phone number": digits})


async def test_a_churn_with_every_provider_leaves_no_secret_on_the_server(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    uid: str,
) -> None:
    parts = Parts(sandbox_admin, uid, [days(3)])
    sandbox_admin.rebilly_seed_order(parts.order)
    number, digits = random_phone()
    wish = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
    request = parts.request(wish, stn={"phoneNumber": number})
    started = await sagas.start(client, SagaKind.CUSTOMER_CHURN, request, settings)
    final: dict[str, Any] = await result_of(client, started.workflow_id)
    assert final["phase"] == "COMPLETED", final.get("cause")

    assert_clean(await stored_bytes(client, started.workflow_id), {"phone number": digits})
