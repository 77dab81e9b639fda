"""/healthz and /readyz; with Temporal unreachable: 503 with Retry-After, never a drop."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.api.conftest import ADMIN_TOKEN, ApiProcess, bearer, free_port, start_api


@pytest.fixture(scope="module")
def api_without_temporal() -> Iterator[ApiProcess]:
    """An API pointed at a port where nothing listens."""
    process = start_api(
        TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}", CANCEL_API_TEMPORAL_TIMEOUT_SECONDS="1"
    )
    yield process
    process.stop()
    process.log.unlink(missing_ok=True)


async def test_ready_when_temporal_answers(api: ApiProcess) -> None:
    async with httpx.AsyncClient(base_url=api.base_url) as http:
        assert (await http.get("/healthz")).status_code == 200
        ready = await http.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


async def test_not_ready_but_alive_when_temporal_is_down(
    api_without_temporal: ApiProcess,
) -> None:
    async with httpx.AsyncClient(base_url=api_without_temporal.base_url, timeout=10) as http:
        assert (await http.get("/healthz")).status_code == 200
        ready = await http.get("/readyz")
    assert ready.status_code == 503 and ready.headers["Retry-After"] == "5"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/line-terminations", {"subscriptionId": "SUB-down"}),
        (
            "/v1/events",
            {
                "specversion": "1.0",
                "id": "down-1",
                "source": "/t",
                "type": "line.termination_requested",
                "data": {"subscriptionId": "SUB-down"},
            },
        ),
        ("/v1/sagas/terminate-SUB-down/revoke", {}),
    ],
    ids=["start", "event", "revoke"],
)
async def test_requests_get_503_with_retry_after_when_temporal_is_down(
    api_without_temporal: ApiProcess, path: str, body: dict[str, object]
) -> None:
    async with httpx.AsyncClient(
        base_url=api_without_temporal.base_url, headers=bearer(ADMIN_TOKEN), timeout=10
    ) as http:
        response = await http.post(path, json=body)
        invalid = await http.post("/v1/line-terminations", json={"phoneNumber": "1"})

    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    assert "nothing was started" in response.json()["detail"]
    # Input is validated before Temporal is needed: bad input is still 422.
    assert invalid.status_code == 422
