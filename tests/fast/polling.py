"""Polling for the fast tier: mocked activities answer at once, so look often."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client

from tests import helpers

INTERVAL = 0.05


async def wait_for_phase(
    client: Client, workflow_id: str, phase: str, within: float = 10.0
) -> dict[str, Any]:
    return await helpers.wait_for_phase(client, workflow_id, phase, within, interval=INTERVAL)
