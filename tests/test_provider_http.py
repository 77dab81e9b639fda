"""How HTTP outcomes become Temporal outcomes (mock transport, no server)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from temporalio.exceptions import ApplicationError

from activities.provider_http import (
    ProviderClient,
    json_http_client,
    raise_for_provider,
    retry_after,
)
from activities.rate_pacing import RateLimitPacer
from activities.rebilly import rebilly_http_client
from activities.stn import servicestack_message
from config.settings import RebillySettings

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def response(
    status: int, json: object = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    request = httpx.Request("POST", "https://stn.example/api/TerminateSubscription")
    return httpx.Response(status, json=json, headers=headers, request=request)


def classify(
    status: int, json: object = None, headers: dict[str, str] | None = None
) -> ApplicationError:
    with pytest.raises(ApplicationError) as raised:
        raise_for_provider(response(status, json, headers), "sTN", servicestack_message)
    return raised.value


def test_success_raises_nothing() -> None:
    raise_for_provider(response(200, {}), "sTN", servicestack_message)


def test_4xx_is_a_non_retryable_rejection_with_the_providers_words() -> None:
    body = {
        "responseStatus": {
            "errorCode": "MaximumLength",
            "message": "too long",
            "errors": [
                {
                    "errorCode": "MaximumLength",
                    "fieldName": "ReferenceNumber",
                    "message": "The length of 'Reference Number' must be 15 characters or fewer.",
                }
            ],
        }
    }
    error = classify(400, body)
    assert error.non_retryable and error.type == "ProviderRejected"
    assert "too long" in error.message and "ReferenceNumber" in error.message


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_server_faults_are_retryable(status: int) -> None:
    error = classify(status)
    assert not error.non_retryable and error.type == "ProviderUnavailable"


def test_429_waits_what_the_provider_asks() -> None:
    error = classify(429, {"message": "slow down"}, {"Retry-After": "7"})
    assert not error.non_retryable
    assert error.next_retry_delay == timedelta(seconds=7)


def test_retry_after_reads_seconds_http_dates_and_rebilly_epochs() -> None:
    assert retry_after(response(429, headers={"Retry-After": "2.5"}), NOW) == timedelta(seconds=2.5)
    http_date = "Sat, 21 Nov 2026 12:00:30 GMT"
    assert retry_after(response(429, headers={"Retry-After": http_date}), NOW) == timedelta(
        seconds=30
    )
    epoch = str(int((NOW + timedelta(seconds=12)).timestamp()))
    assert retry_after(response(429, headers={"X-RateLimit-Retry-After": epoch}), NOW) == timedelta(
        seconds=12
    )
    assert retry_after(response(429), NOW) is None


async def test_json_client_asks_for_json_under_its_base_url() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    transport = httpx.MockTransport(handler)
    async with json_http_client(
        "https://p.example/base", 5, {"k": "v"}, transport=transport
    ) as http:
        await http.get("/v2/x")
    assert str(seen[0].url) == "https://p.example/base/v2/x"
    assert (seen[0].headers["accept"], seen[0].headers["k"]) == ("application/json", "v")


# -- pacing by the announced quota (X-RateLimit-Remaining) ---------------------------


class SimulatedTime:
    """A clock that only the pacer's sleeps move: waits are exact, and nothing sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(round(seconds, 6))
        self.now += seconds


class Quota:
    """A MockTransport provider with ``limit`` write tokens: each write spends one and
    announces what is left; a write with none left is a 429 (reads are free, unannounced)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit
        self.statuses: list[int] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={})
        if self.left == 0:
            self.statuses.append(429)
            return httpx.Response(429, headers={"X-RateLimit-Retry-After": "1893456000"})
        self.left -= 1
        self.statuses.append(201)
        headers = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.left)}
        return httpx.Response(201, json={}, headers=headers)


def paced_client(provider: Quota, time_: SimulatedTime, **pacing: float) -> httpx.AsyncClient:
    pacer = RateLimitPacer(clock=time_.clock, sleep=time_.sleep, **pacing)
    transport = httpx.MockTransport(provider)
    return json_http_client("https://p.example", 5, transport=transport, pacer=pacer)


async def test_writes_slow_down_in_proportion_before_the_quota_runs_out() -> None:
    provider, time_ = Quota(limit=40), SimulatedTime()
    async with paced_client(provider, time_, slow_below=0.1, max_wait=2.0) as http:
        for _ in range(40):
            await http.put("/order-cancellations/x", json={})

    assert provider.statuses == [201] * 40
    # Threshold 4 tokens: the writes after the answers "3", "2", "1", "0" left wait
    # 2 s * (1 - left / 4), spaced from the write before; none before that.
    assert time_.waits == [0.5, 1.0, 1.5]


async def test_the_wait_is_bounded_however_many_requests_run_at_once() -> None:
    provider, time_ = Quota(limit=10), SimulatedTime()
    async with paced_client(provider, time_, slow_below=0.5, max_wait=2.0) as http:
        for _ in range(10):  # spends every token: the last answer says 0 left
            await http.post("/order-reactivations", json={})
        time_.waits.clear()
        answers = await asyncio.gather(
            *(http.post("/order-reactivations", json={}) for _ in range(8))
        )

    assert time_.waits == [2.0] * 8  # each at most max_wait, then the 429 path takes over
    assert [a.status_code for a in answers] == [429] * 8


async def test_reads_are_not_held_back_by_the_quota_of_writes_and_a_refill_ends_the_slowdown() -> (
    None
):
    provider, time_ = Quota(limit=10), SimulatedTime()
    async with paced_client(provider, time_, slow_below=0.5, max_wait=2.0) as http:
        for _ in range(9):
            await http.put("/order-cancellations/x", json={})
        waited = len(time_.waits)
        await http.get("/order-cancellations/x")
        assert len(time_.waits) == waited  # reads: no wait
        provider.left = provider.limit  # the window slid: the next answer says 9 left
        await http.put("/order-cancellations/x", json={})
        await http.put("/order-cancellations/x", json={})
    # Writes 7-9 followed answers of 4, 3, 2 left (threshold 5). After the refill, the
    # first write still follows "1 left" and waits; its answer (9 left) ends the slowdown.
    assert waited == 3 and len(time_.waits) == waited + 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-RateLimit-Remaining": "0"},
        {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "none"},
        {"X-RateLimit-Limit": "0", "X-RateLimit-Remaining": "0"},
    ],
)
async def test_answers_without_a_readable_quota_change_nothing(headers: dict[str, str]) -> None:
    time_ = SimulatedTime()
    pacer = RateLimitPacer(clock=time_.clock, sleep=time_.sleep, slow_below=1.0, max_wait=2.0)
    transport = httpx.MockTransport(lambda r: httpx.Response(200, headers=headers))
    async with json_http_client("https://p.example", 5, transport=transport, pacer=pacer) as http:
        for _ in range(3):
            await http.post("/x")
    assert time_.waits == []


async def test_no_pacing_with_a_zero_max_wait() -> None:
    provider, time_ = Quota(limit=4), SimulatedTime()
    async with paced_client(provider, time_, slow_below=1.0, max_wait=0.0) as http:
        for _ in range(5):
            await http.put("/x", json={})
    assert time_.waits == [] and provider.statuses == [201, 201, 201, 201, 429]


def test_the_rebilly_client_is_paced_by_its_settings() -> None:
    settings = RebillySettings(rate_limit_slow_below=0.25, rate_limit_max_wait_seconds=1.5)
    client = rebilly_http_client(settings)
    assert isinstance(client, ProviderClient) and client.pacer is not None
    assert (client.pacer.slow_below, client.pacer.max_wait) == (0.25, 1.5)
