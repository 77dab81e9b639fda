"""The HTTP API against its own OpenAPI document: Schemathesis, every check, every phase.

:func:`run` starts ``st run`` (Schemathesis 4, the CLI an integrator would use) against
a running API and the document it serves, with ``reliability/schemathesis.toml``
(every check, one request at a time) and the hooks of
``reliability.api_contract_hooks`` (credentials; what the document says in words),
a fixed number of examples per operation and a fixed seed. It reads the run's JSON
report for the figures and its HAR archive for every answer (and the sagas the API
said it started), and keeps the console output for the findings.

Two callers: ``tests/api/test_api_contract.py`` (bounded, in ``make test``) and the
``api-contract`` scenario of ``make reliability`` (more examples; its sagas then run to
their end and the suite's invariants apply to them).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "reliability" / "schemathesis.toml"
#: The checks the config file enables (``[checks] enabled = true``): all of them but
#: ``max_response_time``, which needs a bound to check against.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "use_after_free",
    "ensure_resource_availability",
    "ignored_auth",
    "object_level_authorization",
)
PHASES = ("examples", "coverage", "fuzzing", "stateful")


@dataclass(frozen=True)
class Credentials:
    """What the API under test takes: an all-scopes key and the webhook secrets."""

    api_key: str
    airalo_secret: str
    rebilly_username: str
    rebilly_password: str

    def environment(self) -> dict[str, str]:
        """For the hooks (``reliability.api_contract_hooks``)."""
        return {
            "CANCEL_CONTRACT_API_KEY": self.api_key,
            "CANCEL_API_AIRALO_WEBHOOK_SECRET": self.airalo_secret,
            "CANCEL_API_REBILLY_WEBHOOK_USERNAME": self.rebilly_username,
            "CANCEL_API_REBILLY_WEBHOOK_PASSWORD": self.rebilly_password,
        }


@dataclass
class ContractRun:
    """One Schemathesis run: its figures, findings and the sagas the API started."""

    examples: int
    seed: int
    exit_code: int
    seconds: float
    operations: int = 0
    test_cases: int = 0
    #: Each finding, as Schemathesis titles it (check and operation).
    failures: list[str] = field(default_factory=list)
    #: What kept an operation from being tested at all.
    errors: list[str] = field(default_factory=list)
    phases: dict[str, str] = field(default_factory=dict)
    #: Workflow ids the API answered 200/202 with: every saga the fuzz started.
    started: set[str] = field(default_factory=set)
    #: How often each request (``METHOD /path`` as sent) was answered with each status.
    answers: dict[str, Counter[int]] = field(default_factory=dict)
    #: The body of every 422 answer.
    invalid_answers: list[str] = field(default_factory=list)
    #: Schemathesis's console output (the findings with ``curl`` to reproduce them).
    output: str = ""

    @property
    def clean(self) -> bool:
        return self.exit_code == 0 and not self.failures and not self.errors

    def summary(self) -> str:
        return (
            f"{self.operations} operations, {self.test_cases} test cases "
            f"({self.examples} examples per operation and phase, seed {self.seed}), "
            f"{len(CHECKS)} checks, {self.seconds:.0f} s: "
            + ("nothing found" if self.clean else f"{len(self.failures)} finding(s)")
        )


def run(
    api_url: str,
    credentials: Credentials,
    *,
    examples: int,
    seed: int,
    workdir: Path,
    within: float,
) -> ContractRun:
    """Fuzz the API at ``api_url`` against the document it serves (``/openapi.json``).

    ``within`` (seconds) bounds the whole run: Schemathesis is stopped then, and the
    run reported as not clean (exit code -9), never left running. Blocks: from a loop,
    call it in a thread.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--no-color",
        "--config-file",
        str(CONFIG),
        "run",
        "--max-examples",
        str(examples),
        "--seed",
        str(seed),
        "--report",
        "json,har",
        "--report-dir",
        str(workdir),
        f"{api_url}/openapi.json",
    ]
    env = {**os.environ, **credentials.environment(), "PYTHONPATH": str(ROOT), "COLUMNS": "160"}
    began = time.monotonic()
    log = workdir / "schemathesis.log"
    with log.open("wb") as out:
        try:
            exit_code = subprocess.run(
                command, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=within
            ).returncode
        except subprocess.TimeoutExpired:  # subprocess.run killed it
            exit_code = -9
    result = ContractRun(
        examples=examples,
        seed=seed,
        exit_code=exit_code,
        seconds=time.monotonic() - began,
        output=log.read_text(errors="replace"),
    )
    _read_report(result, workdir)
    _read_archive(result, workdir)
    return result


def _only(workdir: Path, pattern: str) -> Path | None:
    found = sorted(workdir.glob(pattern))
    return found[-1] if found else None


def _read_report(result: ContractRun, workdir: Path) -> None:
    path = _only(workdir, "json-*.json")
    if path is None:
        result.errors.append("Schemathesis wrote no report (see its output)")
        return
    try:
        report: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        # A run stopped at its time bound (exit -9) can leave the report unwritten.
        result.errors.append(f"Schemathesis's report {path.name} is not complete JSON: {error}")
        return
    result.operations = report["operations"]["tested"]
    result.test_cases = report["test_cases"]["generated"]
    result.phases = {name: phase["status"] for name, phase in report["phases"].items()}
    result.failures = [
        f"{failure['code']} {failure['title']} ({failure['count']}): "
        + ", ".join(failure.get("operations") or [])
        for failure in report["failures"]
    ]
    result.errors = [f"{error['title']} ({error['count']})" for error in report["errors"]]
    if not report.get("complete", False):
        result.errors.append(f"the run did not complete ({report.get('stop_reason')})")


def _read_archive(result: ContractRun, workdir: Path) -> None:
    """From the HAR archive: each request's answer, the sagas started, the 422 bodies."""
    path = _only(workdir, "har-*.json")
    if path is None:
        result.errors.append("Schemathesis wrote no HAR archive (see its output)")
        return
    archive = json.loads(path.read_text())
    for entry in archive["log"]["entries"]:
        status: int = entry["response"]["status"]
        route = f"{entry['request']['method']} {urlsplit(entry['request']['url']).path}"
        result.answers.setdefault(route, Counter())[status] += 1
        text = entry["response"].get("content", {}).get("text") or ""
        if status == 422:
            result.invalid_answers.append(text)
        if status not in (200, 202):
            continue
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            answer = json.loads(text)
            if isinstance(answer, dict) and isinstance(answer.get("workflowId"), str):
                result.started.add(answer["workflowId"])
