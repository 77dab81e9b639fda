"""Structured logs: JSON lines with the saga's and the activity's context, no phone numbers.

End to end, the production worker (``python worker.py``) terminates a line given by
phone number through a lost sTN response: its retry logs what it found, and every
line of its log is JSON, names the workflow, run, activity, attempt and provider
where it has them, and never the phone number. Unit tests pin the formatter.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import uuid
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from temporalio.client import Client

from config.logs import JsonFormatter, LogFormat, PrettyFormatter, install, redact
from config.settings import OrchestratorSettings
from domain.common import SagaKind
from domain.stn import TerminationRequest
from sandbox.testing import SandboxAdmin
from starter import sagas
from tests.conftest import TestSandbox
from tests.helpers import result_of
from tests.worker_process import worker_process

ACTIVITY = {
    "activity_id": "3",
    "activity_type": "stn.submit_termination",
    "attempt": 2,
    "namespace": "default",
    "task_queue": "cancellations",
    "workflow_id": "terminate-phone-1f2e",
    "workflow_run_id": "run-9",
    "workflow_type": "LineTermination",
}
WORKFLOW = {
    "attempt": 1,
    "namespace": "default",
    "run_id": "run-7",
    "task_queue": "cancellations",
    "workflow_id": "churn-C-1",
    "workflow_type": "CustomerChurn",
}


def record(message: str, *args: Any, **extra: Any) -> logging.LogRecord:
    made = logging.LogRecord(
        "temporalio.activity", logging.WARNING, __file__, 1, message, args, None
    )
    made.__dict__.update(extra)
    return made


def as_json(made: logging.LogRecord) -> dict[str, Any]:
    line: dict[str, Any] = json.loads(JsonFormatter().format(made))
    return line


def test_an_activity_line_names_workflow_run_activity_attempt_and_provider() -> None:
    line = as_json(record("Completing activity as failed", temporal_activity=ACTIVITY))

    assert line["message"] == "Completing activity as failed"
    assert line["level"] == "WARNING" and line["logger"] == "temporalio.activity"
    assert line["ts"].endswith("+00:00")
    assert {k: line[k] for k in ("workflow_id", "run_id", "activity_type", "attempt")} == {
        "workflow_id": "terminate-phone-1f2e",
        "run_id": "run-9",
        "activity_type": "stn.submit_termination",
        "attempt": 2,
    }
    assert line["provider"] == "stn"


def test_a_workflow_line_names_workflow_and_run_but_no_provider() -> None:
    line = as_json(record("compensating", temporal_workflow=WORKFLOW))

    assert (line["workflow_id"], line["run_id"], line["workflow_type"]) == (
        "churn-C-1",
        "run-7",
        "CustomerChurn",
    )
    assert "provider" not in line and "activity_type" not in line


def test_a_line_outside_any_saga_has_only_the_basics() -> None:
    line = as_json(record("Worker polling task queue %r", "cancellations"))

    assert set(line) == {"ts", "level", "logger", "message"}
    assert line["message"] == "Worker polling task queue 'cancellations'"


def test_a_line_written_in_a_span_names_its_trace() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("RunActivity:stn.get_activation") as span:
        line = as_json(record("polling", temporal_activity=ACTIVITY))

    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert line["span_id"] == format(span.get_span_context().span_id, "016x")


@pytest.mark.parametrize(
    "number", ["0612345678", "06-12345678", "+31612345678", "+31 6 1234 5678", "0031612345678"]
)
def test_phone_numbers_are_redacted_in_messages_and_tracebacks(number: str) -> None:
    try:
        raise ValueError(f"sTN refused {number}")
    except ValueError:
        made = record("lookup of %s failed", number, exc_info=sys.exc_info())

    line = as_json(made)
    pretty = PrettyFormatter().format(made)

    assert line["message"] == "lookup of [phone] failed"
    assert "sTN refused [phone]" in line["exception"]
    assert number not in json.dumps(line) and number not in pretty


def test_ids_that_merely_contain_digits_are_kept() -> None:
    text = "activation 4061234567890 for SUB-06123456789 (reference 2026061234)"
    assert redact(text) == text


def test_pretty_lines_carry_the_same_fields() -> None:
    line = PrettyFormatter().format(
        record("Found activation %s", "A-1", temporal_activity=ACTIVITY)
    )

    assert "WARNING" in line and "Found activation A-1" in line
    assert "workflow_id=terminate-phone-1f2e" in line and "provider=stn" in line


def test_install_routes_every_logger_and_silences_httpx_request_lines() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("httpx").level)
    try:
        install(LogFormat.JSON, "INFO", out)
        logging.getLogger("httpx").info(
            'HTTP Request: GET https://stn/api/Q?phoneNumber=06-1 "200"'
        )
        logging.getLogger("some.module").info("hello %s", "there")
    finally:
        root.handlers, root.level = saved[0], saved[1]
        logging.getLogger("httpx").setLevel(saved[2])

    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(line["logger"], line["message"]) for line in lines] == [("some.module", "hello there")]


# Wall clock ~8 s: the worker process starts, sTN's 1 s processing delay, one retry
# after 1 s. Needed: the worker's own logging setup, real retries, real HTTP.
@pytest.mark.own_sandbox  # a sandbox-wide fault: one lost sTN response
async def test_the_worker_logs_json_with_context_and_no_phone_number(
    client: Client, sandbox: TestSandbox, sandbox_admin: SandboxAdmin, task_queue: str
) -> None:
    digits = str(uuid.uuid4().int)[:8]
    sandbox_admin.add_fault(
        provider="stn",
        method="POST",
        path="/api/TerminateSubscription",
        mode="drop_response",
        count=1,
    )
    with worker_process(
        client, sandbox, task_queue, CANCEL_LOG_LEVEL="info", CANCEL_METRICS_WORKER_ADDRESS=""
    ) as worker:
        started = await sagas.start(
            client,
            SagaKind.LINE_TERMINATION,
            TerminationRequest(phone_number=f"06{digits}"),
            OrchestratorSettings(task_queue=task_queue),
        )
        final = await result_of(client, started.workflow_id)
        output = worker.output()

    assert final["phase"] == "COMPLETED"
    lines = [json.loads(line) for line in output.splitlines()]
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    assert not [line for line in lines if line["level"] == "ERROR"], output
    found = [line for line in lines if line["message"].startswith("Found activation")]
    assert len(found) == 1, output
    assert {k: found[0][k] for k in ("workflow_id", "activity_type", "attempt", "provider")} == {
        "workflow_id": started.workflow_id,
        "activity_type": "stn.submit_termination",
        "attempt": 2,
        "provider": "stn",
    }
    assert found[0]["run_id"] == started.run_id
    failed = [line for line in lines if line["level"] == "WARNING" and "activity_type" in line]
    assert [(line["attempt"], line["provider"]) for line in failed] == [(1, "stn")], output
    assert digits not in output  # in no notation: each keeps the 8 digits together
    assert not any(line["logger"].startswith("httpx") for line in lines)
    assert "phoneNumber=" not in output  # no request URL with its query is logged
