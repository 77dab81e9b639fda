"""/v1/bulk-operations and /v1/forecast over HTTP: the same operations as ``cancelctl``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from temporalio.client import Client

from config.settings import OrchestratorSettings
from domain.bulk import Selection
from domain.common import SagaKind
from domain.stn import TerminationRequest
from starter import bulk, sagas
from tests.api.conftest import READER_TOKEN, bearer
from tests.helpers import eventually, status_of, wait_for_phase
from worker import ProductWorkers


def in_days(days: int) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0)


async def test_a_bulk_revoke_is_started_followed_and_reported(
    http: httpx.AsyncClient,
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    ids = []
    for n in range(3):
        request = TerminationRequest(
            subscription_id=f"SUB-{uid}-{n}", wish_date=in_days(3), customer_id=f"C-{uid}"
        )
        started = await sagas.start(client, SagaKind.LINE_TERMINATION, request, settings)
        await wait_for_phase(client, started.workflow_id, "WAITING")
        ids.append(started.workflow_id)
    query = Selection(customer_id=f"C-{uid}").visibility_query(settings.task_queue)

    async def visible() -> None:
        assert await bulk.count_selection(client, query) == 3

    await eventually(visible)
    body = {"action": "revoke", "selection": {"customerId": f"C-{uid}"}, "reason": "withdrawn"}

    answer = await http.post("/v1/bulk-operations", json=body)

    assert answer.status_code == 202, answer.text
    started_op = answer.json()
    assert started_op["selected"] == 3 and answer.headers["Location"] == started_op["statusUrl"]

    async def done() -> dict[str, object]:
        shown = await http.get(started_op["statusUrl"], headers=bearer(READER_TOKEN))
        assert shown.status_code == 200 and shown.json()["state"] == "done", shown.text
        report: dict[str, object] = shown.json()
        return report

    report = await eventually(done)
    assert report["counts"] == {"applied": 3}
    for workflow_id in ids:
        assert (await status_of(client, workflow_id))["phase"] == "REVOKED"
    stop = await http.post(f"/v1/bulk-operations/{started_op['operationId']}/cancel")
    assert stop.status_code == 404  # it has ended: nothing to stop


async def test_nothing_matching_starts_nothing_and_bad_input_is_422(
    http: httpx.AsyncClient, worker: ProductWorkers, uid: str
) -> None:
    nothing = await http.post(
        "/v1/bulk-operations",
        json={"action": "revoke", "selection": {"customerId": f"NOBODY-{uid}"}},
    )
    assert nothing.status_code == 200 and nothing.json()["operationId"] is None

    past = {"action": "reschedule", "selection": {}, "wishDate": "2020-01-01T00:00:00Z"}
    refused = await http.post("/v1/bulk-operations", json=past)
    assert refused.status_code == 422 and "wishDate" in refused.text

    wrong = {"action": "revoke", "selection": {"query": "NoSuchAttribute = 'x'"}}
    rejected = await http.post("/v1/bulk-operations", json=wrong)
    assert rejected.status_code == 422
    assert rejected.json()["detail"][0]["field"] == "selection.query"

    unknown = await http.get("/v1/bulk-operations/no-such-operation")
    assert unknown.status_code == 404


async def test_the_forecast_counts_sagas_due_per_provider_and_bucket(
    http: httpx.AsyncClient,
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    due = (datetime.now(UTC) + timedelta(days=2)).replace(
        hour=12, minute=0, second=0, microsecond=0
    )
    request = TerminationRequest(subscription_id=f"SUB-{uid}", wish_date=due)
    started = await sagas.start(client, SagaKind.LINE_TERMINATION, request, settings)
    await wait_for_phase(client, started.workflow_id, "WAITING")

    async def counted() -> None:
        answer = await http.get("/v1/forecast", params={"days": 3, "by": "day", "provider": "stn"})
        assert answer.status_code == 200
        buckets = answer.json()["buckets"]
        assert len(buckets) == 3 and {b["provider"] for b in buckets} == {"stn"}
        (bucket,) = [b for b in buckets if b["start"][:10] == due.date().isoformat()]
        assert bucket["due"] >= 1 and bucket["capacity"] is None and not bucket["exceedsLane"]

    await eventually(counted)
    assert (await http.get("/v1/forecast", params={"days": 0})).status_code == 422
