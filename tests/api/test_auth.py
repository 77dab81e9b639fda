"""Bearer API keys: 401 without a valid key, 403 without the scope, health without keys."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import EVENTS_TOKEN, READER_TOKEN, ApiProcess, bearer

START = ("POST", "/v1/line-terminations", {"subscriptionId": "SUB-auth"})
EVENT = (
    "POST",
    "/v1/events",
    {"specversion": "1.0", "id": "1", "source": "/t", "type": "customer.churned", "data": {}},
)
STATUS = ("GET", "/v1/sagas/terminate-SUB-auth", None)


@pytest.mark.parametrize("call", [START, EVENT, STATUS], ids=["start", "event", "status"])
@pytest.mark.parametrize(
    "headers",
    [{}, bearer("not-a-key"), {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}],
    ids=["no-key", "wrong-key", "basic", "bearer-without-token"],
)
async def test_no_valid_key_is_401(
    api: ApiProcess, call: tuple[str, str, object], headers: dict[str, str]
) -> None:
    method, path, body = call
    async with httpx.AsyncClient(base_url=api.base_url) as http:
        response = await http.request(method, path, json=body, headers=headers)

    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "not-a-key" not in response.text


@pytest.mark.parametrize(
    ("token", "call"),
    [
        (READER_TOKEN, START),
        (READER_TOKEN, EVENT),
        (EVENTS_TOKEN, START),
        (EVENTS_TOKEN, STATUS),
        (READER_TOKEN, ("POST", "/v1/sagas/terminate-SUB-auth/revoke", {})),
    ],
    ids=["reader-starts", "reader-sends-event", "events-starts", "events-reads", "reader-revokes"],
)
async def test_a_key_without_the_scope_is_403(
    api: ApiProcess, token: str, call: tuple[str, str, object]
) -> None:
    method, path, body = call
    async with httpx.AsyncClient(base_url=api.base_url, headers=bearer(token)) as http:
        response = await http.request(method, path, json=body)

    assert response.status_code == 403, response.text
    assert "scope" in response.json()["detail"]


async def test_health_and_the_openapi_document_need_no_key(api: ApiProcess) -> None:
    async with httpx.AsyncClient(base_url=api.base_url) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        assert (await http.get("/readyz")).status_code == 200
        assert (await http.get("/openapi.json")).status_code == 200


def test_tokens_never_reach_the_log(api: ApiProcess) -> None:
    from tests.api.conftest import ADMIN_TOKEN

    output = api.output()
    assert all(token not in output for token in (ADMIN_TOKEN, READER_TOKEN, EVENTS_TOKEN))
