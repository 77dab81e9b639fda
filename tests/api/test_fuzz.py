"""A bounded, schema-driven fuzz of the running API: no input makes it answer 5xx.

Bodies are built from the committed OpenAPI document: each operation's request
schema gives the property names, filled with awkward values (wrong types, past,
naive and garbled dates, long and odd strings, nesting), plus arbitrary JSON, odd
workflow ids and query strings. Derandomized and bounded (examples and time), so
it runs the same in CI within seconds.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from starter.api.events import event_types
from tests.api.conftest import ADMIN_TOKEN, ApiProcess, bearer

# Hypothesis keeps caches in ./.hypothesis; keep the work tree clean.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "co-tests-hypothesis")

DOCUMENT = json.loads((Path(__file__).parent.parent.parent / "docs" / "openapi.json").read_text())
SCHEMAS: dict[str, Any] = DOCUMENT["components"]["schemas"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            " ",
            "2020-01-01T00:00:00Z",
            "2099-01-01T00:00:00+01:00",
            "2099-01-01T00:00:00",
            "2099-13-45T99:99:99Z",
            "now",
            "at-next-renewal",
            "0612345678",
            "06-12345678",
            "x" * 300,
            "a" * 25,
            "'; DROP TABLE--",
            "\\' OR 1=1",
            "\u0000\u202e",
            "retry",
            "mark_handled",
        ]
    ),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def properties(schema_name: str) -> list[str]:
    return sorted(SCHEMAS[schema_name].get("properties", {}))


def body_for(schema_name: str) -> st.SearchStrategy[Any]:
    """A dict over the schema's property names (nested parts recursively), or any JSON."""
    names = properties(schema_name)
    nested = {
        "stn": "TerminationRequest",
        "rebilly": "OrderCancellationRequest",
        "airalo": "FutureOrderCancellationRequest",
    }
    value_for: dict[str, st.SearchStrategy[Any]] = {name: json_values for name in names}
    if schema_name == "CustomerChurnRequest":
        for part, part_schema in nested.items():
            value_for[part] = st.one_of(json_values, body_for(part_schema))
    shaped = st.fixed_dictionaries({}, optional=value_for)
    return st.one_of(shaped, shaped, json_values)


def request_schema(operation: dict[str, Any]) -> str | None:
    body = operation.get("requestBody")
    if body is None:
        return None
    ref: str = body["content"]["application/json"]["schema"]["$ref"]
    return ref.rsplit("/", 1)[1]


WEBHOOKS = "/v1/webhooks/"
# Bulk operations steer every saga of the API's task queue: fuzzed, one would revoke or
# cancel the other tests' sagas (tests/api/test_bulk.py covers their input rules).
BULK = "/v1/bulk-operations"
# A fuzzed subscription that happened to be valid would send every other API test's
# outcome events to a made-up URL (tests/api/test_subscriptions.py covers its rules).
SUBSCRIPTIONS = "/v1/subscriptions"
POSTS = sorted(
    (path, request_schema(ops["post"]))
    for path, ops in DOCUMENT["paths"].items()
    if "post" in ops
    and "{workflow_id}" not in path
    and not path.startswith(WEBHOOKS)
    and not path.startswith(BULK)
    and not path.startswith(SUBSCRIPTIONS)
)
STEERING = sorted(
    (path, request_schema(ops["post"]))
    for path, ops in DOCUMENT["paths"].items()
    if "post" in ops and "{workflow_id}" in path
)
workflow_ids = st.one_of(
    st.text(min_size=1, max_size=30).filter(lambda s: "/" not in s and s not in {".", ".."}),
    st.sampled_from(["terminate-none", "x" * 300, "churn-%20", "cancel-order-@~."]),
)


@st.composite
def calls(draw: st.DrawFn) -> tuple[str, str, Any, dict[str, str]]:
    headers: dict[str, str] = {}
    kind = draw(st.sampled_from(["start", "event", "steer", "list", "webhook"]))
    if kind == "start":
        path, schema = draw(st.sampled_from([p for p in POSTS if p[0] != "/v1/events"]))
        assert schema is not None
        if draw(st.booleans()):
            headers["Idempotency-Key"] = draw(
                st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=220)
                | st.just("")
            )
        return "POST", path, draw(body_for(schema)), headers
    if kind == "event":
        envelope = st.fixed_dictionaries(
            {
                "specversion": st.sampled_from(["1.0", "1.0", "0.3"]) | json_values,
                "id": st.text(max_size=20) | json_values,
                "source": st.just("/fuzz") | json_values,
                "type": st.sampled_from([*event_types(), "unknown.type"]) | json_values,
            },
            optional={
                "data": st.one_of(*(body_for(s) for s in properties_by_event()), json_values),
                "subject": json_values,
            },
        )
        return "POST", "/v1/events", draw(envelope | json_values), headers
    if kind == "webhook":
        # Unsigned, unauthenticated or garbled: refused, never a server error.
        path = draw(st.sampled_from([WEBHOOKS + "airalo", WEBHOOKS + "rebilly"]))
        visible = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1)
        if draw(st.booleans()):
            headers["airalo-signature"] = draw(visible)
        if draw(st.booleans()):
            headers["Authorization"] = "Basic " + draw(visible)
        return "POST", path, draw(json_values), headers
    if kind == "steer":
        path, schema = draw(st.sampled_from(STEERING))
        body = draw(body_for(schema)) if schema else draw(st.none() | json_values)
        workflow_id = quote(draw(workflow_ids), safe="")
        return "POST", path.replace("{workflow_id}", workflow_id), body, headers
    query = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "status": st.text(max_size=20),
                "customerId": st.text(max_size=20),
                "limit": st.text(max_size=6) | st.integers(-5, 2000).map(str),
            },
        )
    )
    return "GET", "/v1/sagas?" + httpx.QueryParams(query).__str__(), None, headers


def properties_by_event() -> list[str]:
    return [
        "TerminationRequest",
        "OrderCancellationRequest",
        "FutureOrderCancellationRequest",
        "CustomerChurnRequest",
    ]


@pytest.fixture(scope="session")
def sync_http(api: ApiProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.base_url, headers=bearer(ADMIN_TOKEN), timeout=30) as http:
        yield http


@settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(call=calls())
def test_no_input_makes_the_api_fail(
    sync_http: httpx.Client, call: tuple[str, str, Any, dict[str, str]]
) -> None:
    method, path, body, headers = call
    content = None if body is None else json.dumps(body).encode()
    response = sync_http.request(
        method, path, content=content, headers={"Content-Type": "application/json", **headers}
    )
    event(f"{method} {'/'.join(path.split('?')[0].split('/')[:3])} -> {response.status_code}")
    assert response.status_code < 500, (method, path, body, response.text)
    if response.status_code == 422:
        detail = response.json()["detail"]
        assert detail and all(set(problem) == {"field", "rule"} for problem in detail)
