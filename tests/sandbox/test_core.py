"""Call log, fault injection, reset and runtime configuration (exercised through sTN)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from sandbox.state import Sandbox
from tests.sandbox.conftest import STN_HEADERS

TERMINATE = "/stn/api/TerminateSubscription"
QUERY = "/stn/api/QueryActivation"


async def add_fault(client: httpx.AsyncClient, **spec: Any) -> str:
    response = await client.post("/_sandbox/faults", json=spec)
    assert response.status_code == 200, response.text
    fault_id: str = response.json()["id"]
    return fault_id


async def calls(client: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    response = await client.get("/_sandbox/calls", params=params)
    assert response.status_code == 200
    result: list[dict[str, Any]] = response.json()["calls"]
    return result


async def activation_count(client: httpx.AsyncClient) -> int:
    response = await client.get(QUERY, headers=STN_HEADERS)
    total: int = response.json()["total"]
    return total


# ------------------------------------------------------------------ call log


async def test_call_log_records_each_provider_call(client: httpx.AsyncClient) -> None:
    await client.post(TERMINATE, json={"subscriptionId": "S1"}, headers=STN_HEADERS)
    await client.get(QUERY, params={"subscriptionId": "S1", "take": "5"}, headers=STN_HEADERS)
    await client.post(TERMINATE, json={}, headers={"stn-api-key": "bad"})
    await client.get("/_sandbox/config")  # admin calls are not logged

    first, second, third = await calls(client)
    assert first == {
        "seq": 1,
        "at": "2030-01-15T12:00:00.000Z",
        "provider": "stn",
        "method": "POST",
        "path": "/api/TerminateSubscription",
        "query": {},
        "status": 200,
        "requestBody": {"subscriptionId": "S1"},
        "fault": None,
        "applied": True,
    }
    assert second["method"] == "GET"
    assert second["query"] == {"subscriptionId": "S1", "take": "5"}
    assert second["requestBody"] is None
    assert (third["status"], third["applied"], third["seq"]) == (401, False, 3)


async def test_call_log_filters(client: httpx.AsyncClient) -> None:
    await client.post(TERMINATE, json={"subscriptionId": "S1"}, headers=STN_HEADERS)
    await client.get(QUERY, headers=STN_HEADERS)
    assert [c["seq"] for c in await calls(client, provider="stn")] == [1, 2]
    assert [c["seq"] for c in await calls(client, provider="airalo")] == []
    assert [c["seq"] for c in await calls(client, method="GET")] == [2]
    assert [c["seq"] for c in await calls(client, method="post")] == [1]
    assert [c["seq"] for c in await calls(client, path="/api/QueryActivation")] == [2]
    assert await calls(client, path="/api/Query") == []


async def test_header_values_are_never_logged(client: httpx.AsyncClient) -> None:
    await client.post(TERMINATE, json={"subscriptionId": "S1"}, headers=STN_HEADERS)
    dumped = json.dumps(await calls(client))
    assert "sandbox-stn-key" not in dumped


async def test_unknown_provider_route_is_logged_in_provider_shape(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/stn/api/Nope", headers=STN_HEADERS)
    assert response.status_code == 404
    assert response.json()["responseStatus"]["errorCode"] == "NotFound"
    (call,) = await calls(client)
    assert (call["path"], call["status"], call["applied"]) == ("/api/Nope", 404, False)


# ------------------------------------------------------------------ faults


async def test_error_fault_is_not_applied_and_uses_provider_shape(
    client: httpx.AsyncClient,
) -> None:
    fault_id = await add_fault(
        client, provider="stn", method="POST", path="/api/Terminate.*", mode="error", count=1
    )
    failed = await client.post(TERMINATE, json={"subscriptionId": "S1"}, headers=STN_HEADERS)
    assert failed.status_code == 503
    assert failed.json()["responseStatus"]["errorCode"] == "ServiceUnavailable"
    assert await activation_count(client) == 0

    retried = await client.post(TERMINATE, json={"subscriptionId": "S1"}, headers=STN_HEADERS)
    assert retried.status_code == 200
    log = await calls(client, path="/api/TerminateSubscription")
    assert [(c["status"], c["fault"], c["applied"]) for c in log] == [
        (503, fault_id, False),
        (200, None, True),
    ]


async def test_error_fault_with_custom_status(client: httpx.AsyncClient) -> None:
    await add_fault(client, provider="stn", mode="error", status=500)
    response = await client.get(QUERY, headers=STN_HEADERS)
    assert response.status_code == 500
    assert response.json()["responseStatus"]["errorCode"] == "InternalServerError"


async def test_fault_matching_by_provider_method_and_full_path(client: httpx.AsyncClient) -> None:
    await add_fault(client, provider="airalo", mode="error")
    await add_fault(client, provider="stn", method="GET", mode="error")
    await add_fault(client, provider="stn", path="/api/Terminate", mode="error")  # not full match
    ok = await client.post(TERMINATE, json={"subscriptionId": "S1"}, headers=STN_HEADERS)
    assert ok.status_code == 200
    assert (await client.get(QUERY, headers=STN_HEADERS)).status_code == 503


async def test_fault_listing_counts_down_and_clear(client: httpx.AsyncClient) -> None:
    fault_id = await add_fault(client, mode="error", count=2, retryAfterSeconds=3)
    await client.get(QUERY, headers=STN_HEADERS)
    (listed,) = (await client.get("/_sandbox/faults")).json()["faults"]
    assert listed["id"] == fault_id
    assert (listed["remaining"], listed["fired"], listed["count"]) == (1, 1, 2)
    assert listed["retryAfterSeconds"] == 3
    assert (await client.delete("/_sandbox/faults")).status_code == 200
    assert (await client.get("/_sandbox/faults")).json()["faults"] == []
    assert (await client.get(QUERY, headers=STN_HEADERS)).status_code == 200


async def test_first_matching_fault_fires(client: httpx.AsyncClient) -> None:
    first = await add_fault(client, mode="error", status=502, count=1)
    await add_fault(client, mode="error", status=500, count=1)
    assert (await client.get(QUERY, headers=STN_HEADERS)).status_code == 502
    assert (await client.get(QUERY, headers=STN_HEADERS)).status_code == 500
    assert (await client.get(QUERY, headers=STN_HEADERS)).status_code == 200
    assert (await calls(client))[0]["fault"] == first


async def test_fault_rate_uses_a_seeded_random(client: httpx.AsyncClient) -> None:
    await add_fault(client, mode="error", rate=0.5)
    statuses = [(await client.get(QUERY, headers=STN_HEADERS)).status_code for _ in range(20)]
    assert 0 < statuses.count(503) < 20
    # Reset re-seeds the generator, so the sequence repeats exactly.
    await client.post("/_sandbox/reset")
    await add_fault(client, mode="error", rate=0.5)
    again = [(await client.get(QUERY, headers=STN_HEADERS)).status_code for _ in range(20)]
    assert again == statuses


@pytest.mark.parametrize(
    "spec",
    [
        {"mode": "explode"},
        {"mode": "error", "rate": 2},
        {"mode": "error", "path": "("},
        {"mode": "error", "provider": "acme"},
        {"mode": "error", "status": 200},
    ],
)
async def test_invalid_fault_specs_are_rejected(
    client: httpx.AsyncClient, spec: dict[str, Any]
) -> None:
    assert (await client.post("/_sandbox/faults", json=spec)).status_code == 422


async def test_stn_rate_limit_fault(client: httpx.AsyncClient) -> None:
    await add_fault(client, provider="stn", mode="rate_limit", retryAfterSeconds=2.5, count=1)
    response = await client.post(TERMINATE, json={"subscriptionId": "S1"}, headers=STN_HEADERS)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.json()["responseStatus"]["errorCode"] == "TooManyRequests"
    assert await activation_count(client) == 0


async def test_drop_response_applies_but_loses_the_response(client: httpx.AsyncClient) -> None:
    fault_id = await add_fault(client, path="/api/TerminateSubscription", mode="drop_response")
    response = await client.post(TERMINATE, json={"subscriptionId": "S1"}, headers=STN_HEADERS)
    assert response.status_code == 504
    assert response.text == "upstream response lost"
    assert response.headers["content-type"].startswith("text/plain")
    assert await activation_count(client) == 1
    (call,) = await calls(client, path="/api/TerminateSubscription")
    assert (call["status"], call["applied"], call["fault"]) == (504, True, fault_id)


async def test_drop_response_of_a_rejected_request_is_not_applied(
    client: httpx.AsyncClient,
) -> None:
    await add_fault(client, mode="drop_response")
    response = await client.post(TERMINATE, json={}, headers=STN_HEADERS)
    assert response.status_code == 504
    (call,) = await calls(client)
    assert (call["status"], call["applied"]) == (504, False)


async def test_latency_fault_delays_then_handles(client: httpx.AsyncClient) -> None:
    fault_id = await add_fault(client, mode="latency", latencySeconds=0.05)
    started = time.perf_counter()
    response = await client.post(TERMINATE, json={"subscriptionId": "S1"}, headers=STN_HEADERS)
    assert time.perf_counter() - started >= 0.05
    assert response.status_code == 200
    (call,) = await calls(client)
    assert (call["fault"], call["applied"]) == (fault_id, True)


async def test_admin_routes_are_never_faulted(client: httpx.AsyncClient) -> None:
    await add_fault(client, mode="error")
    assert (await client.get("/_sandbox/config")).status_code == 200


# ------------------------------------------------------------------ reset and config


async def test_reset_clears_state_faults_and_log(client: httpx.AsyncClient) -> None:
    await client.post(TERMINATE, json={"subscriptionId": "S1"}, headers=STN_HEADERS)
    await add_fault(client, mode="latency", latencySeconds=0)
    assert (await client.post("/_sandbox/reset")).status_code == 200
    assert await calls(client) == []
    assert (await client.get("/_sandbox/faults")).json()["faults"] == []
    assert await activation_count(client) == 0
    assert (await calls(client))[0]["seq"] == 1


async def test_config_roundtrip_without_secrets(client: httpx.AsyncClient) -> None:
    config = (await client.get("/_sandbox/config")).json()
    assert config["stnProcessingDelaySeconds"] == 5.0
    assert config["rebillyOrganizationId"] == "org-sandbox"
    assert "stnApiKey" not in config
    assert "rebillyApiKey" not in config
    assert "airaloClientSecret" not in config
    updated = await client.post(
        "/_sandbox/config",
        json={"stnProcessingDelaySeconds": 0.5, "airalo_token_rate_limit_per_minute": 9},
    )
    assert updated.status_code == 200
    assert updated.json()["stnProcessingDelaySeconds"] == 0.5
    assert updated.json()["airaloTokenRateLimitPerMinute"] == 9


async def test_config_changes_apply_at_runtime(client: httpx.AsyncClient, state: Sandbox) -> None:
    await client.post("/_sandbox/config", json={"stnApiKey": "rotated"})
    assert state.context.settings.stn_api_key == "rotated"
    assert (await client.get(QUERY, headers=STN_HEADERS)).status_code == 401
    assert (await client.get(QUERY, headers={"stn-api-key": "rotated"})).status_code == 200


@pytest.mark.parametrize(
    "changes", [{"nope": 1}, {"stnProcessingDelaySeconds": "slow"}, {"airaloTokenExpiresIn": []}]
)
async def test_invalid_config_is_rejected(
    client: httpx.AsyncClient, changes: dict[str, Any]
) -> None:
    assert (await client.post("/_sandbox/config", json=changes)).status_code == 422
