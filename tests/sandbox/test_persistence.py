"""``--state-file``: provider state survives a restart; tokens, faults and calls do not."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from sandbox.__main__ import main
from sandbox.app import create_app
from sandbox.clock import ManualClock
from sandbox.persistence import StateFileError, write_atomically
from sandbox.settings import SandboxSettings
from sandbox.state import get_sandbox

from .conftest import REBILLY_BASE, REBILLY_HEADERS, STN_HEADERS

TERMINATE = "/stn/api/TerminateSubscription"
QUERY = "/stn/api/QueryActivation"
CANCEL = "/stn/api/CancelTerminateSubscription"
CANCELLATIONS = REBILLY_BASE + "/order-cancellations"
REACTIVATIONS = REBILLY_BASE + "/order-reactivations"
TOKEN = "/airalo/v2/token"
FUTURE_ORDERS = "/airalo/v2/future-orders"
AIRALO_CREDENTIALS = {
    "client_id": "sandbox-airalo-client",
    "client_secret": "sandbox-airalo-secret",
    "grant_type": "client_credentials",
}


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "sandbox-state.json"


@pytest.fixture
def persistent(settings: SandboxSettings, state_path: Path) -> SandboxSettings:
    return settings.model_copy(update={"state_file": str(state_path)})


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
        yield http


def saved(path: Path) -> Any:
    """The state file's JSON (sync: ruff's ASYNC rules keep file I/O out of async tests)."""
    return json.loads(path.read_bytes())


def raw_bytes(path: Path) -> bytes | None:
    return path.read_bytes() if path.exists() else None


def directory_listing(path: Path) -> list[str]:
    return sorted(entry.name for entry in path.iterdir())


async def airalo_token(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post(TOKEN, data=AIRALO_CREDENTIALS)
    assert response.status_code == 200
    return {"Authorization": f"Bearer {response.json()['data']['access_token']}"}


async def test_stn_state_survives_restart(
    persistent: SandboxSettings, clock: ManualClock, state_path: Path
) -> None:
    assert raw_bytes(state_path) is None
    async with serve(create_app(persistent, clock=clock)) as first:
        linked = {"subscriptionId": "S1", "phoneNumber": "06-12345678"}
        body = linked | {"wishDate": "2030-01-16T00:00:00Z", "referenceNumber": "R1"}
        assert (await first.post(TERMINATE, json=body, headers=STN_HEADERS)).status_code == 200
        cancelled = await first.post(TERMINATE, json={"subscriptionId": "S3"}, headers=STN_HEADERS)
        cancel = {"activationId": cancelled.json()["id"], "note": "changed mind"}
        assert (await first.post(CANCEL, json=cancel, headers=STN_HEADERS)).status_code == 200
        outcome = {"outcome": "ERROR", "message": "blocked"}
        assert (await first.post("/_sandbox/stn/subscriptions/S2", json=outcome)).status_code == 200
        before = (await first.get(QUERY, headers=STN_HEADERS)).json()

    document = saved(state_path)
    assert document["version"] == 1
    assert document["stn"]["activations"][0]["created_at"] == "2030-01-15T12:00:00Z"

    async with serve(create_app(persistent, clock=clock)) as second:
        assert (await second.get(QUERY, headers=STN_HEADERS)).json() == before
        # The phone number is still linked to S1, whose termination is still pending.
        by_phone = {"phoneNumber": "06-12345678"}
        pending = await second.post(TERMINATE, json=by_phone, headers=STN_HEADERS)
        assert pending.json()["responseStatus"]["errorCode"] == "TerminationPending"
        # The configured outcome of S2 still applies.
        await second.post(TERMINATE, json={"subscriptionId": "S2"}, headers=STN_HEADERS)
        clock.advance(seconds=10)
        params = {"subscriptionId": "S2"}
        (failed,) = (await second.get(QUERY, params=params, headers=STN_HEADERS)).json()["results"]
        assert failed["status"] == "ERROR"
        assert failed["info"]["errorMessage"] == "blocked"


async def test_rebilly_state_survives_restart(
    persistent: SandboxSettings, clock: ManualClock
) -> None:
    seed = {"id": "O1", "nextRenewalTime": "2030-01-25T12:00:00Z", "amount": 10}
    cancellation = {
        "orderId": "O1",
        "churnTimePolicy": "at-next-renewal",
        "prorated": True,
        "lineItems": [
            {"type": "debit", "unitPriceAmount": 1.5, "unitPriceCurrency": "EUR", "quantity": 2}
        ],
    }
    async with serve(create_app(persistent, clock=clock)) as first:
        assert (await first.post("/_sandbox/rebilly/orders", json=seed)).status_code == 200
        put = await first.put(CANCELLATIONS + "/C1", json=cancellation, headers=REBILLY_HEADERS)
        assert put.status_code == 201
        later = {"orderId": "O2", "churnTime": "2030-03-01T00:00:00Z"}
        assert (await first.post(CANCELLATIONS, json=later, headers=REBILLY_HEADERS)).is_success
        reactivation = await first.post(
            REACTIVATIONS, json={"orderId": "O2"}, headers=REBILLY_HEADERS
        )
        assert reactivation.status_code == 201
        reactivation_url = REACTIVATIONS + "/" + reactivation.json()["id"]
        listed = (await first.get(CANCELLATIONS, headers=REBILLY_HEADERS)).json()
        order = (await first.get("/_sandbox/rebilly/orders/O1")).json()

    async with serve(create_app(persistent, clock=clock)) as second:
        assert (await second.get(CANCELLATIONS, headers=REBILLY_HEADERS)).json() == listed
        got = await second.get(CANCELLATIONS + "/C1", headers=REBILLY_HEADERS)
        assert got.json() == put.json()
        got = await second.get(reactivation_url, headers=REBILLY_HEADERS)
        assert got.json() == reactivation.json()
        assert (await second.get("/_sandbox/rebilly/orders/O1")).json() == order
        # Still the same confirmed cancellation: an idempotent re-create is a 200, not a 201.
        again = await second.put(CANCELLATIONS + "/C1", json=cancellation, headers=REBILLY_HEADERS)
        assert again.status_code == 200


async def test_airalo_orders_survive_restart_but_tokens_do_not(
    persistent: SandboxSettings, clock: ManualClock
) -> None:
    order = {"package_id": "pkg-1", "quantity": 2, "due_date": "2030-01-20 12:00"}
    failed = {"package_id": "pkg-2", "due_date": "2030-01-21 12:00", "status": "failed"}
    async with serve(create_app(persistent, clock=clock)) as first:
        auth = await airalo_token(first)
        created = await first.post(FUTURE_ORDERS, json=order, headers=auth)
        assert created.status_code == 200
        request_id = created.json()["data"]["request_id"]
        assert (await first.post("/_sandbox/airalo/future-orders", json=failed)).status_code == 200
        internal = (await first.get(f"/_sandbox/airalo/future-orders/{request_id}")).json()
        listed = (await first.get(FUTURE_ORDERS, headers=auth)).json()

    async with serve(create_app(persistent, clock=clock)) as second:
        assert (await second.get(FUTURE_ORDERS, headers=auth)).status_code == 401
        auth = await airalo_token(second)
        assert (await second.get(FUTURE_ORDERS, headers=auth)).json() == listed
        got = await second.get(f"/_sandbox/airalo/future-orders/{request_id}")
        assert got.json() == internal
        cancel = {"request_ids": [request_id]}
        response = await second.post("/airalo/v2/cancel-future-orders", json=cancel, headers=auth)
        assert response.status_code == 200


async def test_faults_and_calls_are_not_kept(
    persistent: SandboxSettings, clock: ManualClock
) -> None:
    async with serve(create_app(persistent, clock=clock)) as first:
        await first.post(TERMINATE, json={"subscriptionId": "S1"}, headers=STN_HEADERS)
        await first.post("/_sandbox/faults", json={"mode": "error", "status": 503})

    async with serve(create_app(persistent, clock=clock)) as second:
        assert (await second.get("/_sandbox/faults")).json() == {"faults": []}
        assert (await second.get("/_sandbox/calls")).json() == {"calls": []}


async def test_reset_is_saved(persistent: SandboxSettings, clock: ManualClock) -> None:
    async with serve(create_app(persistent, clock=clock)) as first:
        await first.post(TERMINATE, json={"subscriptionId": "S1"}, headers=STN_HEADERS)
        await first.post("/_sandbox/reset")

    async with serve(create_app(persistent, clock=clock)) as second:
        assert (await second.get(QUERY, headers=STN_HEADERS)).json()["total"] == 0


async def test_shutdown_saves_state(
    persistent: SandboxSettings, clock: ManualClock, state_path: Path
) -> None:
    app = create_app(persistent, clock=clock)
    async with app.router.lifespan_context(app):
        get_sandbox(app).stn.set_outcome("S9", "ERROR", "no")
    assert saved(state_path)["stn"]["outcomes"]["S9"]["message"] == "no"


async def test_failed_write_keeps_old_file_and_is_retried(
    persistent: SandboxSettings,
    clock: ManualClock,
    state_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with serve(create_app(persistent, clock=clock)) as client:
        await client.post(TERMINATE, json={"subscriptionId": "S1"}, headers=STN_HEADERS)
        old = raw_bytes(state_path)

        def broken_replace(*_args: Any) -> None:
            raise OSError("disk full")

        monkeypatch.setattr("sandbox.persistence.os.replace", broken_replace)
        response = await client.post(TERMINATE, json={"subscriptionId": "S2"}, headers=STN_HEADERS)
        assert response.status_code == 200  # applied; the save failure is only logged
        assert raw_bytes(state_path) == old
        assert directory_listing(state_path.parent) == [state_path.name]

        monkeypatch.undo()
        await client.get(QUERY, headers=STN_HEADERS)  # the next request retries the save
        assert saved(state_path)["stn"]["activations"][1]["subscription_id"] == "S2"


def test_write_atomically_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "state.json"
    write_atomically(target, b'{"old": true}')

    def broken_fsync(_fd: int) -> None:
        raise OSError("I/O error")

    monkeypatch.setattr("sandbox.persistence.os.fsync", broken_fsync)
    with pytest.raises(OSError, match="I/O error"):
        write_atomically(target, b'{"new": true}')
    assert target.read_bytes() == b'{"old": true}'
    assert directory_listing(tmp_path) == ["state.json"]


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[]", b'{"version": 2, "stn": {}, "rebilly": {}, "airalo": {}}'],
    ids=["not-json", "not-an-object", "other-version"],
)
def test_corrupt_file_is_an_error_naming_the_file(
    persistent: SandboxSettings, state_path: Path, content: bytes
) -> None:
    state_path.parent.mkdir(parents=True)
    state_path.write_bytes(content)
    with pytest.raises(StateFileError, match=str(state_path)):
        create_app(persistent)
    assert state_path.read_bytes() == content  # not reset


def test_cli_reports_a_corrupt_file(state_path: Path) -> None:
    state_path.parent.mkdir(parents=True)
    state_path.write_text("garbage")
    with pytest.raises(SystemExit) as exited:
        main(["--state-file", str(state_path)])
    assert str(state_path) in str(exited.value.code)


async def test_state_file_can_not_be_changed_at_runtime(
    persistent: SandboxSettings, tmp_path: Path
) -> None:
    async with serve(create_app(persistent)) as client:
        changes = {"stateFile": str(tmp_path / "other.json")}
        response = await client.post("/_sandbox/config", json=changes)
        assert response.status_code == 422
        assert "startup" in response.json()["detail"]
