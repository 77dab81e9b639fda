"""The benchmarks (``bench/``, ``make bench``), small, on the dev server's target.

``make bench`` is not part of ``make test`` (half an hour), so these run two of its
benchmarks end to end with a handful of sagas, each on its private stack (dev server,
sandbox, the product's worker, the bare worker, the API; free ports, a temporary
directory: nothing shared with the tests beside it), into a temporary report
(``BENCH_REPORT``). They assert what a change to the harness could break: the section
is written under its key with its table, every variant's row ran the sagas asked
for and all of them completed, the ratios are numbers and each process's CPU was
read from the right process. Never a timing.

``tests/cluster/test_bench_smoke.py`` runs the same on the PostgreSQL-backed cluster
(``--target cluster``) with the helpers here. The unit tests at the end check the
report's keys per target and the CPU of a process group (PostgreSQL's backends).
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import intake, operator_latency, overhead, report
from bench.measure import Processes
from bench.phases import Kind
from config.settings import OrchestratorSettings

#: Sagas per variant: enough that each figure asserted above 0 is several of /proc's
#: 10 ms CPU ticks (the API spends ~5 ms per start, the server ~50 ms per saga).
SAGAS = 5
INTAKE_SAGAS = 10
#: Warm-up sagas per kind (the benchmark's own 20 exist to settle timings, not checked here).
WARM_UP = 2
#: The operator benchmark, small: sagas started meanwhile, revokes during them.
OPERATOR_SAGAS, OPERATOR_REVOKES = 10, 2
INTAKE_WAYS = [
    "bare client start (Client.start_workflow)",
    "direct client starts",
    "API POST /v1/line-terminations",
    "API POST /v1/events (CloudEvent)",
]


# -- reading the report ---------------------------------------------------------------


def section_of(path: Path, key: str) -> str:
    """The text between ``<!-- bench:KEY -->`` and its end marker."""
    text = path.read_text()
    found = re.search(
        rf"<!-- bench:{re.escape(key)} -->\n(.*?)\n<!-- /bench:{re.escape(key)} -->",
        text,
        flags=re.DOTALL,
    )
    assert found is not None, f"no section {key!r} in the report:\n{text[:3000]}"
    return found.group(1)


def rows_of(section: str) -> list[dict[str, str]]:
    """The section's table (its first one), each row by column name."""
    lines = [line for line in section.splitlines() if line.startswith("|")]
    assert len(lines) > 2, f"no table in the section:\n{section}"

    def cells(line: str) -> list[str]:
        return [cell.strip() for cell in line.strip().strip("|").split("|")]

    header = cells(lines[0])
    return [dict(zip(header, cells(line), strict=True)) for line in lines[2:]]


def ratio(cell: str) -> float:
    """``0.87x`` as a number (finite, above 0)."""
    assert cell.endswith("x"), cell
    value = float(cell.removesuffix("x"))
    assert math.isfinite(value) and value > 0, cell
    return value


def use_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: str = "") -> Path:
    """A report of the test's own (``BENCH_REPORT``), optionally with some content."""
    path = tmp_path / "performance.md"
    if seed:
        path.write_text(seed)
    monkeypatch.setenv(report.REPORT_ENV, str(path))
    return path


# -- the benchmarks, small --------------------------------------------------------------


async def run_overhead(target: str, path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """``python -m bench.overhead --sagas 5 --rounds 1`` (2 warm-up sagas per kind) on
    ``target``; checks its table and returns its section."""
    monkeypatch.setattr(overhead, "WARM_UP", WARM_UP)
    args = ["--sagas", str(SAGAS), "--rounds", "1", "--target", target]
    await overhead.main(overhead.parse_args(args))

    section = section_of(path, "overhead" if target == "dev" else f"overhead-{target}")
    rows = rows_of(section)
    kinds = {variant.label: variant.kind for variant in overhead.VARIANTS}
    assert [row["variant"] for row in rows] == list(kinds)
    for row in rows:
        assert row["sagas"] == str(SAGAS), row
        assert row["not completed"] == "0", row
        ratio(row["vs bare no-op"])
        ratio(row["vs bare HTTP"])
        assert float(row["sagas/s"]) > 0, row
        # CPU read from the right processes: the server's and the one worker that ran.
        assert float(row["server CPU ms/saga"]) > 0, row
        runner = "worker" if kinds[row["variant"]] is Kind.PRODUCT else "bare worker"
        assert float(row[f"{runner} CPU ms/saga"]) > 0, row
    return section


async def run_intake(target: str, path: Path) -> list[dict[str, str]]:
    """``python -m bench.intake --sagas 10`` on ``target`` (through its HTTP API too);
    checks its table and returns the rows."""
    await intake.main(intake.parse_args(["--sagas", str(INTAKE_SAGAS), "--target", target]))

    rows = rows_of(section_of(path, "intake" if target == "dev" else f"intake-{target}"))
    assert [row["way in"] for row in rows] == INTAKE_WAYS
    for row in rows:
        assert row["sagas"] == str(INTAKE_SAGAS), row
        ratio(row["vs direct"])
        assert float(row["server CPU ms/saga"]) > 0, row
    for row in rows[2:]:
        assert float(row["API CPU ms/saga"]) > 0, row
    return rows


async def test_overhead_on_the_dev_server_writes_every_variant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = use_report(tmp_path, monkeypatch)

    section = await run_overhead("dev", path, monkeypatch)

    assert "target `dev`" in section
    assert "(cluster:" not in section


async def test_intake_on_the_dev_server_has_no_database_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dev server keeps SQLite in its own process: its database column says so."""
    path = use_report(tmp_path, monkeypatch)

    rows = await run_intake("dev", path)

    assert {row["database CPU ms/saga"] for row in rows} == {report.NOT_MEASURED}


async def test_operator_latency_on_the_dev_server_answers_and_applies_every_revoke(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its section: one idle row, one busy row; every revoke answered 200 or 202 and
    then applied, the bound stated. Never a timing."""
    path = use_report(tmp_path, monkeypatch)
    args = ["--sagas", str(OPERATOR_SAGAS), "--revokes", str(OPERATOR_REVOKES)]

    await operator_latency.main(operator_latency.parse_args(args))

    section = section_of(path, "operator")
    rows = rows_of(section)
    assert [row["when"] for row in rows] == [
        "worker idle",
        f"while {OPERATOR_SAGAS} sagas start",
    ]
    bound = OrchestratorSettings().operator_wait_seconds
    for row, sent in zip(rows, (1, OPERATOR_REVOKES), strict=True):
        assert row["sent"] == row["REVOKED"] == str(sent), row
        assert int(row["answered 200"]) + int(row["answered 202"]) == sent, row
        assert float(row["bound s"]) == bound, row
        for cell in ("answer s p50 / max", "REVOKED after s p50 / max"):
            assert all(float(part) >= 0 for part in row[cell].split(" / ")), row
    assert "`python -m bench.operator_latency --sagas 10 --revokes 2`" in section


# -- the parts, alone -------------------------------------------------------------------


def test_a_cluster_section_is_written_beside_the_dev_one_never_over_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = use_report(tmp_path, monkeypatch, seed="# Performance\n\nHand-written findings.\n")

    def section(body: str) -> report.Section:
        command = "python -m bench.calls --sagas 5"
        return report.Section("calls", "3. Provider efficiency", command, "x\n\nAbout.", body)

    report.publish(section("| dev |\n|---|\n| 1 |"), "dev")
    report.publish(section("| cluster |\n|---|\n| 2 |"), "cluster")
    report.publish(section("| dev again |\n|---|\n| 3 |"), "dev")

    text = path.read_text()
    assert text.startswith("# Performance\n\nHand-written findings.\n")
    dev, cluster = section_of(path, "calls"), section_of(path, "calls-cluster")
    assert "| dev again |" in dev and "| cluster |" not in dev
    assert "| cluster |" in cluster
    assert "## 3. Provider efficiency (cluster: PostgreSQL, 4 Temporal services" in cluster
    assert "`python -m bench.calls --target cluster --sagas 5`" in cluster
    assert "target `cluster`" in cluster and "Temporal Server v" in cluster
    assert text.index("<!-- bench:calls -->") < text.index("<!-- bench:calls-cluster -->")
    assert text.count("<!-- bench:") == 2


def test_a_process_group_counts_its_children_live_and_reaped() -> None:
    """PostgreSQL's figure: the postmaster, its live backends, and what the ones that
    exited used (reaped: in the parent's ``cutime``)."""
    burn = "import sys, time\nwhile time.process_time() < 0.3:\n    pass\n"
    burn_and_wait = burn + "print(1, flush=True)\nsys.stdin.read()\n"
    parent = (
        "import subprocess, sys\n"
        f"subprocess.run([sys.executable, '-c', {burn!r}])\n"
        f"subprocess.run([sys.executable, '-c', {burn_and_wait!r}])\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", parent], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None and process.stdin is not None
        assert process.stdout.readline() == "1\n"  # one child reaped, one alive, both burnt

        alone = Processes.of(process.pid)
        group = Processes.of(process.pid, with_children=True)

        assert len(alone.members()) == 1 and len(group.members()) == 2
        assert alone.cpu_seconds() < 0.25
        assert group.cpu_seconds() >= 0.55
        alone_rss, group_rss = alone.rss_mib(), group.rss_mib()
        assert alone_rss is not None and group_rss is not None and group_rss > alone_rss
    finally:
        if process.stdin is not None:
            process.stdin.close()
        process.wait(timeout=30)
