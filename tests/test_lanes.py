"""Provider lanes as an operator steers them: ``cancelctl lanes``, its limits at run time,
and a worker refusing a limit that is no limit, on the real dev server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from domain.common import Provider
from starter import cli
from tests.helpers import eventually
from worker import ProductWorkers

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, client: Client, task_queue: str) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", client.namespace)
    monkeypatch.setenv("CANCEL_TASK_QUEUE", task_queue)


async def cancelctl(*argv: str) -> int:
    return await asyncio.to_thread(cli.main, list(argv))


async def lanes_json(capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, Any]]:
    assert await cancelctl("lanes", "--json") == 0
    return {lane["provider"]: lane for lane in json.loads(capsys.readouterr().out)}


async def test_a_lanes_limit_is_set_and_reset_at_run_time(
    cli_env: None,
    worker: ProductWorkers,
    task_queue: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def unlimited_and_polled() -> None:
        # The server lists a lane's pollers from their first poll on: not at once.
        lanes = await lanes_json(capsys)
        assert set(lanes) == {provider.value for provider in Provider}
        assert lanes["stn"]["taskQueue"] == f"{task_queue}-stn"
        assert lanes["stn"]["limitSource"] == "none" and lanes["stn"]["pollers"] >= 1

    await eventually(unlimited_and_polled)

    assert await cancelctl("lanes", "set", "stn", "--max-calls-per-second", "3") == 0
    shown = capsys.readouterr().out
    assert "stn" in shown and "cancelctl lanes set" in shown

    async def three_per_second() -> None:
        stn = (await lanes_json(capsys))["stn"]
        assert stn["limitPerSecond"] == 3.0 and stn["limitSource"] == "cancelctl lanes set"
        # A wave of 10,000 first polls at 3/s would take an hour: spread over the cap.
        assert stn["observationSpreadSeconds"] == 900.0

    await eventually(three_per_second)
    assert (await lanes_json(capsys))["airalo"]["limitSource"] == "none"  # the others untouched

    assert await cancelctl("lanes", "reset", "stn") == 0
    capsys.readouterr()

    async def no_limit_again() -> None:
        assert (await lanes_json(capsys))["stn"]["limitSource"] == "none"

    await eventually(no_limit_again)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["lanes", "set", "stn", "--max-calls-per-second", "0"], "invalid maxCallsPerSecond"),
        (["lanes", "set", "stn", "--max-calls-per-second", "-2"], "invalid maxCallsPerSecond"),
        (["lanes", "set", "nimbus", "--max-calls-per-second", "5"], "invalid provider"),
        (["lanes", "reset", "nimbus"], "invalid provider"),
    ],
    ids=["zero", "negative", "unknown-provider", "reset-unknown-provider"],
)
def test_a_limit_that_is_no_limit_is_refused_before_connecting(
    argv: list[str],
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")  # never reached

    assert cli.main(argv) == 2
    assert expected in capsys.readouterr().err


def test_lanes_against_an_unreachable_server_exit_1_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
    assert cli.main(["lanes"]) == 1
    assert "cannot reach Temporal at 127.0.0.1:1" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-1", "fast", "nan", "inf"])
def test_a_worker_refuses_a_lane_limit_that_is_no_limit_naming_the_setting(value: str) -> None:
    finished = subprocess.run(
        [sys.executable, "worker.py"],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "TEMPORAL_ADDRESS": "127.0.0.1:1",  # never reached: refused before connecting
            "CANCEL_METRICS_WORKER_ADDRESS": "",
            "CANCEL_STN_MAX_CALLS_PER_SECOND": value,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert finished.returncode == 1
    assert "CANCEL_STN_MAX_CALLS_PER_SECOND" in finished.stderr
    assert "must be a number of calls per second above 0" in finished.stderr
