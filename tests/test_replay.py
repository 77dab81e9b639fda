"""Replay committed histories against today's workflow code.

Sagas sleep for weeks and outlive releases: a change that would make a
recorded run take a different path fails here, before it reaches a worker
with live executions. Record new histories with ``RECORD_HISTORIES=1 make pytest``
(see README, "Changing a workflow safely").
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from config.temporal import data_converter
from tests.helpers import HISTORIES
from worker import OUTCOME_WORKFLOWS, WORKFLOWS

HISTORY_FILES = sorted(HISTORIES.glob("*.json"))


def workflow_type_of(path: Path) -> str:
    events = json.loads(path.read_text())["events"]
    started = events[0]["workflowExecutionStartedEventAttributes"]
    return str(started["workflowType"]["name"])


def test_every_workflow_type_has_a_recorded_history() -> None:
    recorded = {workflow_type_of(path) for path in HISTORY_FILES}
    defined = {
        w.__temporal_workflow_definition.name  # type: ignore[attr-defined]
        for w in (*WORKFLOWS, *OUTCOME_WORKFLOWS)
    }
    assert defined <= recorded, f"no committed history for {sorted(defined - recorded)}"


@pytest.mark.parametrize("path", HISTORY_FILES, ids=[p.stem for p in HISTORY_FILES])
async def test_replay(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, await asyncio.to_thread(path.read_text))
    replayer = Replayer(workflows=[*WORKFLOWS, *OUTCOME_WORKFLOWS], data_converter=data_converter())

    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)

    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
