"""CloudEvents intake: each type starts its saga; a redelivery never starts a second one."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from config.settings import OrchestratorSettings
from domain import search_attributes as sa
from starter.api import events
from starter.api.events import event_types
from starter.api.idempotency import event_key
from starter.kinds import KINDS
from tests.api.conftest import ROOT
from tests.helpers import eventually, result_of, wait_for_phase
from worker import ProductWorkers

CLOUDEVENTS = {"Content-Type": "application/cloudevents+json"}


def event(event_type: str, data: dict[str, Any], **attributes: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": attributes.pop("id", str(uuid.uuid4())),
        "source": attributes.pop("source", "/crm/tests"),
        "type": event_type,
        "data": data,
        **attributes,
    }


def in_days(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def rid(uid: str, n: int) -> str:
    return f"{uid}-{n}".ljust(25, "x")


# Each event type with a valid ``data`` and the workflow type it starts.
CASES: dict[str, tuple[Callable[[str], dict[str, Any]], str]] = {
    "line.termination_requested": (
        lambda uid: {"subscriptionId": f"SUB-{uid}", "wishDate": in_days(2)},
        "LineTermination",
    ),
    "billing.order_cancel_requested": (
        lambda uid: {"orderId": f"ord-{uid}", "churnTimePolicy": "at-next-renewal", "draft": True},
        "OrderCancellation",
    ),
    "esim.future_orders_cancel_requested": (
        lambda uid: {"requestIds": [rid(uid, 1), rid(uid, 2)]},
        "FutureOrderCancellation",
    ),
    "customer.churned": (
        lambda uid: {
            "customerId": f"C-{uid}",
            "wishDate": in_days(2),
            "stn": {"subscriptionId": f"SUB-{uid}"},
        },
        "CustomerChurn",
    ),
}


def test_every_event_type_is_covered() -> None:
    assert set(CASES) == set(event_types())


def test_the_event_tables_in_the_docs_are_the_registrys() -> None:
    """starter/api/events.py's docstring and the README list each kind's event type."""
    docstring = events.__doc__ or ""
    readme = (ROOT / "README.md").read_text()
    for spec in KINDS:
        event_type, model = re.escape(spec.event_type), spec.model.__name__
        row = rf"^``{event_type}``\s+{spec.workflow_type}\s+``{model}``$"
        assert re.search(row, docstring, re.MULTILINE), spec.event_type
        assert f"| `{spec.event_type}` | {spec.workflow_type} |" in readme
    assert len(re.findall(r"^``[a-z_]+\.[a-z_]+``", docstring, re.MULTILINE)) == len(KINDS)
    readme_rows = re.findall(r"^\s*\| `[a-z_]+\.[a-z_]+` \| [A-Za-z]+ \|$", readme, re.MULTILINE)
    assert len(readme_rows) == len(KINDS)


@pytest.mark.parametrize("event_type", list(CASES))
async def test_each_event_type_starts_its_saga(
    http: httpx.AsyncClient, worker: ProductWorkers, uid: str, event_type: str
) -> None:
    make_data, workflow_type = CASES[event_type]

    response = await http.post(
        "/v1/events", json=event(event_type, make_data(uid)), headers=CLOUDEVENTS
    )

    assert response.status_code == 202, response.text
    assert response.headers["Location"] == response.json()["statusUrl"]

    async def reachable() -> dict[str, Any]:
        state = await http.get(response.json()["statusUrl"])
        assert state.status_code == 200, state.text
        return dict(state.json())

    state = await eventually(reachable)
    assert state["workflowType"] == workflow_type
    assert state["workflowId"] == response.json()["workflowId"]
    assert state["phase"]


async def test_the_same_event_three_times_is_one_run(
    http: httpx.AsyncClient, client: Client, uid: str
) -> None:
    delivered = event("line.termination_requested", CASES["line.termination_requested"][0](uid))

    answers = [await http.post("/v1/events", json=delivered) for _ in range(3)]

    assert [a.status_code for a in answers] == [202, 200, 200]
    assert len({a.json()["runId"] for a in answers}) == 1
    assert all(a.json()["duplicateDelivery"] for a in answers[1:])
    workflow_id = answers[0].json()["workflowId"]

    async def runs() -> int:
        count = (await client.count_workflows(f"WorkflowId = '{workflow_id}'")).count
        assert count >= 1
        return count

    assert await eventually(runs) == 1


async def test_the_same_event_after_the_saga_completed_is_still_that_run(
    http: httpx.AsyncClient, client: Client, worker: ProductWorkers, uid: str
) -> None:
    delivered = event("line.termination_requested", {"subscriptionId": f"SUB-{uid}"})
    first = await http.post("/v1/events", json=delivered)
    assert first.status_code == 202
    workflow_id = first.json()["workflowId"]
    # Closed, not only COMPLETED in its status: the run closes a moment after its last
    # phase change (it still hands its outcome event over), and a repeat in that moment
    # finds it running.
    assert (await result_of(client, workflow_id))["phase"] == "COMPLETED"

    again = await http.post("/v1/events", json=delivered)

    assert again.status_code == 200, again.text
    body = again.json()
    assert body["runId"] == first.json()["runId"] and body["duplicateDelivery"] is True
    assert body["alreadyRunning"] is False and body["status"]["phase"] == "COMPLETED"
    latest = await client.get_workflow_handle(workflow_id).describe()
    assert latest.run_id == first.json()["runId"]


async def test_a_redelivered_event_whose_wish_date_has_passed_is_still_that_run(
    http: httpx.AsyncClient, client: Client, worker: ProductWorkers, uid: str
) -> None:
    """Issue #10 (defect 4): event buses redeliver hours later; a churn accepted while its
    date lay ahead was answered 422 "in the past" on redelivery instead of with its run."""
    wish = datetime.now(UTC) + timedelta(seconds=2)
    data = {
        "customerId": f"C-{uid}",
        "wishDate": wish.isoformat(),
        "stn": {"subscriptionId": f"SUB-{uid}"},
    }
    delivered = event("customer.churned", data, id=f"churn-{uid}")
    first = await http.post("/v1/events", json=delivered)
    assert first.status_code == 202, first.text
    workflow_id, run_id = first.json()["workflowId"], first.json()["runId"]

    async def date_passed() -> None:
        assert datetime.now(UTC) > wish

    await eventually(date_passed, within=10)

    again = await http.post("/v1/events", json=delivered)

    assert again.status_code == 200, again.text
    answer = again.json()
    assert answer["duplicateDelivery"] is True
    assert (answer["workflowId"], answer["runId"]) == (workflow_id, run_id)
    assert answer["status"]["workflowId"] == workflow_id
    # A new event (another id) with that date is new input: refused, nothing started.
    fresh = await http.post("/v1/events", json=event("customer.churned", data))
    assert fresh.status_code == 422, fresh.text
    assert fresh.json()["detail"] == [{"field": "data.wishDate", "rule": "must not be in the past"}]
    assert (await client.get_workflow_handle(workflow_id).describe()).run_id == run_id
    await wait_for_phase(client, workflow_id, "COMPLETED")

    async def runs() -> int:  # visibility is eventually consistent: wait for the first
        count = (await client.count_workflows(f"WorkflowId = '{workflow_id}'")).count
        assert count >= 1
        return count

    assert await eventually(runs) == 1


async def test_the_same_event_id_with_another_payload_is_409(
    http: httpx.AsyncClient, client: Client, uid: str
) -> None:
    data = {"subscriptionId": f"SUB-{uid}", "wishDate": in_days(2)}
    first = await http.post("/v1/events", json=event("line.termination_requested", data, id=uid))
    assert first.status_code == 202

    # Same business key, another request: caught by the run's memo at once.
    same_line = {**data, "referenceNumber": "REF-1"}
    conflict = await http.post(
        "/v1/events", json=event("line.termination_requested", same_line, id=uid)
    )
    assert conflict.status_code == 409, conflict.text
    assert "different request" in conflict.json()["detail"]

    # Another business key: caught through the IdempotencyKey search attribute once
    # visibility has indexed the first run (eventually consistent).
    key = event_key(
        OrchestratorSettings().workflow_id_key.get_secret_value().encode(), "/crm/tests", uid
    )

    async def indexed() -> None:
        query = f"{sa.IDEMPOTENCY_KEY.name} = '{key}'"
        assert (await client.count_workflows(query)).count == 1

    await eventually(indexed)
    other_line = {"subscriptionId": f"SUB-other-{uid}"}
    elsewhere = await http.post(
        "/v1/events", json=event("line.termination_requested", other_line, id=uid)
    )
    assert elsewhere.status_code == 409, elsewhere.text
    assert (await client.count_workflows(f"WorkflowId = 'terminate-SUB-other-{uid}'")).count == 0


async def test_an_unknown_event_type_is_422_listing_the_supported_ones(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post("/v1/events", json=event("line.teleported", {}))

    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["field"] == "type"
    assert all(name in problem["rule"] for name in event_types())


@pytest.mark.parametrize(
    ("envelope", "fields"),
    [
        ({"specversion": "0.3"}, {"specversion"}),
        ({"id": None, "source": ""}, {"id", "source"}),
        ({"data": "text"}, {"data"}),
    ],
    ids=["old-specversion", "no-id-no-source", "data-not-an-object"],
)
async def test_a_broken_envelope_is_422(
    http: httpx.AsyncClient, envelope: dict[str, Any], fields: set[str]
) -> None:
    delivered = {**event("line.termination_requested", {"subscriptionId": "S"}), **envelope}
    delivered = {k: v for k, v in delivered.items() if v is not None}
    response = await http.post("/v1/events", json=delivered)
    assert response.status_code == 422
    assert {problem["field"] for problem in response.json()["detail"]} == fields


async def test_invalid_data_is_422_with_the_data_fields(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/v1/events",
        json=event("billing.order_cancel_requested", {"orderId": "o 1", "reason": "bored"}),
    )
    assert response.status_code == 422
    fields = {problem["field"] for problem in response.json()["detail"]}
    assert fields == {"data.orderId", "data.reason"}


async def test_a_date_more_than_two_years_ahead_is_422_and_starts_nothing(
    http: httpx.AsyncClient, client: Client, uid: str
) -> None:
    data = {"subscriptionId": f"SUB-{uid}", "wishDate": "9999-12-31T00:00:00+00:00"}
    response = await http.post("/v1/events", json=event("line.termination_requested", data))

    assert response.status_code == 422, response.text
    assert response.json()["detail"] == [
        {"field": "data.wishDate", "rule": "must be at most 730 days ahead"}
    ]
    with pytest.raises(RPCError) as missing:  # describe: strongly consistent
        await client.get_workflow_handle(f"terminate-SUB-{uid}").describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND


async def test_binary_mode_is_415(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/v1/events", content=b"<xml/>", headers={"Content-Type": "application/xml"}
    )
    assert response.status_code == 415
