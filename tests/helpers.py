"""Polling with a deadline instead of sleeping, and small saga helpers."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from temporalio.client import Client, WorkflowHandle

T = TypeVar("T")
HISTORIES = Path(__file__).parent / "histories"


async def eventually(
    check: Callable[[], Awaitable[T]], *, within: float = 30.0, interval: float = 0.2
) -> T:
    """Run ``check`` until it stops raising AssertionError, or fail at the deadline."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(interval)


def eventually_sync(check: Callable[[], T], *, within: float = 30.0, interval: float = 0.1) -> T:
    """``eventually`` for code outside the event loop (e.g. a subprocess coming up)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        threading.Event().wait(interval)


async def result_of(client: Client, workflow_id: str) -> dict[str, Any]:
    """The saga's final status (its workflow result), waiting for it to end."""
    result: dict[str, Any] = await client.get_workflow_handle(workflow_id).result()
    return result


async def status_of(client: Client, workflow_id: str) -> dict[str, Any]:
    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id)
    state: dict[str, Any] = await handle.query("status")
    return state


async def wait_for_phase(
    client: Client, workflow_id: str, phase: str, within: float = 30.0, interval: float = 0.2
) -> dict[str, Any]:
    async def check() -> dict[str, Any]:
        state = await status_of(client, workflow_id)
        assert state["phase"] == phase, f"phase {state['phase']}, want {phase}"
        return state

    return await eventually(check, within=within, interval=interval)


async def record_history(handle: WorkflowHandle[Any, Any], name: str) -> None:
    """With RECORD_HISTORIES=1, save the run's history for the replay tests."""
    if os.environ.get("RECORD_HISTORIES") != "1":
        return
    history = await handle.fetch_history()
    HISTORIES.mkdir(exist_ok=True)
    data = json.loads(history.to_json())
    (HISTORIES / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n")
