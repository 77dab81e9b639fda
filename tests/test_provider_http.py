"""How HTTP outcomes become Temporal outcomes (mock transport, no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from temporalio.exceptions import ApplicationError

from activities.provider_http import json_http_client, raise_for_provider, retry_after
from activities.stn import servicestack_message

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
