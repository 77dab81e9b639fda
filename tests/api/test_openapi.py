"""The OpenAPI document: served, valid, and committed as docs/openapi.json without drift."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from openapi_spec_validator import validate

from config.settings import ApiSettings
from starter.api.app import create_app
from starter.api.events import event_types
from starter.api.openapi import build_openapi
from starter.kinds import KINDS
from tests.api.conftest import ApiProcess

COMMITTED = Path(__file__).parent.parent.parent / "docs" / "openapi.json"
#: A valid request of each model that documents a deprecated property.
SOME_VALID = {"OrderCancellationRequest": {"orderId": "ord-1"}}


def test_committed_document_matches_the_code() -> None:
    generated = build_openapi(create_app(ApiSettings(keys=[])))
    assert json.loads(COMMITTED.read_text()) == generated, (
        "docs/openapi.json is out of date: run `make openapi`"
    )


def test_committed_document_is_valid_openapi() -> None:
    validate(json.loads(COMMITTED.read_text()))


async def test_served_document_is_the_committed_one_and_docs_are_served(api: ApiProcess) -> None:
    async with httpx.AsyncClient(base_url=api.base_url) as http:
        served = (await http.get("/openapi.json")).json()
        docs = await http.get("/docs")
    assert served == json.loads(COMMITTED.read_text())
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_every_start_body_is_its_domain_model() -> None:
    document = json.loads(COMMITTED.read_text())
    for spec in KINDS:
        body = document["paths"][f"/v1/{spec.api_path}"]["post"]["requestBody"]
        ref = body["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{spec.model.__name__}"
        properties = document["components"]["schemas"][spec.model.__name__]["properties"]
        current = {name for name, schema in properties.items() if not schema.get("deprecated")}
        assert current == {field.alias or name for name, field in spec.model.model_fields.items()}
        # A deprecated property is one the domain still takes, and ignores.
        for name in set(properties) - current:
            spec.model.model_validate({**SOME_VALID[spec.model.__name__], name: "anything"})
    description = document["paths"]["/v1/events"]["post"]["description"]
    assert all(event_type in description for event_type in event_types())
