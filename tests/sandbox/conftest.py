"""Fixtures: an in-process sandbox app with a manual clock, and an httpx client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from sandbox.app import create_app
from sandbox.clock import ManualClock
from sandbox.settings import SandboxSettings
from sandbox.state import Sandbox, get_sandbox

START = datetime(2030, 1, 15, 12, 0, 0, tzinfo=UTC)

STN_HEADERS = {"stn-api-key": "sandbox-stn-key"}
REBILLY_HEADERS = {"REB-APIKEY": "sk_sandbox_rebilly"}
REBILLY_BASE = "/rebilly/organizations/org-sandbox"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def settings() -> SandboxSettings:
    # Explicit values so that SANDBOX_* variables in the environment cannot change the tests.
    return SandboxSettings(
        stn_api_key="sandbox-stn-key",
        stn_processing_delay_seconds=5.0,
        rebilly_api_key="sk_sandbox_rebilly",
        rebilly_organization_id="org-sandbox",
        rebilly_default_renewal_days=30,
        airalo_client_id="sandbox-airalo-client",
        airalo_client_secret="sandbox-airalo-secret",
        airalo_token_expires_in=86400,
        airalo_token_rate_limit_per_minute=5,
        state_file=None,
    )


@pytest.fixture
def app(settings: SandboxSettings, clock: ManualClock) -> FastAPI:
    return create_app(settings, clock=clock)


@pytest.fixture
def state(app: FastAPI) -> Sandbox:
    return get_sandbox(app)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
        yield http
