"""GET /v1/lanes: each provider lane, read from Temporal, for a reader's key."""

from __future__ import annotations

import httpx

from domain.common import Provider
from tests.api.conftest import ADMIN_TOKEN, EVENTS_TOKEN, READER_TOKEN, ApiProcess, bearer
from worker import ProductWorkers


async def test_every_lane_with_its_limit_backlog_and_workers(
    http: httpx.AsyncClient, worker: ProductWorkers
) -> None:
    answer = await http.get("/v1/lanes", headers=bearer(READER_TOKEN))

    assert answer.status_code == 200
    lanes = {lane["provider"]: lane for lane in answer.json()["lanes"]}
    assert set(lanes) == {provider.value for provider in Provider}
    for provider, lane in lanes.items():
        assert lane["taskQueue"].endswith(f"-{provider}")
        assert lane["limitPerSecond"] is None and lane["limitSource"] == "none"
        assert lane["backlog"] >= 0 and lane["oldestWaitingSeconds"] >= 0
        assert lane["pollers"] >= 1  # the test's worker serves every lane
        assert lane["observationSpreadSeconds"] == 0


async def test_lanes_need_a_key_that_may_read(api: ApiProcess) -> None:
    async with httpx.AsyncClient(base_url=api.base_url) as http:
        assert (await http.get("/v1/lanes")).status_code == 401
        assert (await http.get("/v1/lanes", headers=bearer(EVENTS_TOKEN))).status_code == 403
        assert (await http.get("/v1/lanes", headers=bearer(ADMIN_TOKEN))).status_code == 200
