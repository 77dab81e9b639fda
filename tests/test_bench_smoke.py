"""The benchmarks (``bench/``, ``make bench``), small, on the dev server's target.

``make bench`` is not part of ``make test`` (most of an hour), so these run its
benchmarks (all but the wave and the calls) end to end with a handful of sagas,
each on its private stack (dev server, sandbox, the product's worker, the bare
worker, the API; free ports, a temporary directory: nothing shared with the tests
beside it), into a temporary report (``BENCH_REPORT``). They assert what a change to
the harness could break: the section is written under its key with its tables,
every variant's row ran the sagas asked for and all of them completed, the ratios
are numbers and each process's CPU was read from the right process. Never a timing.

``tests/cluster/test_bench_smoke.py`` runs the same on the PostgreSQL-backed cluster
(``--target cluster``) with the helpers here. The unit tests at the end check the
report's keys per target, the CPU of a process group (PostgreSQL's backends), the
busiest window of a call log and the lane limits as worker tuning.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import (
    bulk,
    intake,
    lane_rates,
    lanes,
    operator_latency,
    outcomes,
    overhead,
    report,
    scale,
)
from bench.measure import Processes, busiest_window
from bench.phases import Kind
from bench.target import tuned
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


def tables_of(section: str) -> list[list[dict[str, str]]]:
    """The section's tables, each row by column name."""

    def cells(line: str) -> list[str]:
        return [cell.strip() for cell in line.strip().strip("|").split("|")]

    tables: list[list[str]] = []
    previous = ""
    for line in section.splitlines():
        if line.startswith("|"):
            if not previous.startswith("|"):
                tables.append([])
            tables[-1].append(line)
        previous = line
    assert tables and all(len(lines) > 2 for lines in tables), f"no table in:\n{section}"
    return [
        [dict(zip(cells(lines[0]), cells(line), strict=True)) for line in lines[2:]]
        for lines in tables
    ]


def rows_of(section: str) -> list[dict[str, str]]:
    """The section's table (its first one), each row by column name."""
    return tables_of(section)[0]


def ratio(cell: str) -> float:
    """``0.87x`` (or ``3.1 (1.03x)``: the ratio in brackets) as a number (finite, above 0)."""
    found = re.fullmatch(r"(?:.* \()?([\d.]+)x\)?", cell)
    assert found is not None, cell
    value = float(found.group(1))
    assert math.isfinite(value) and value > 0, cell
    return value


def key(name: str, target: str) -> str:
    """A benchmark's section key on ``target``."""
    return name if target == "dev" else f"{name}-{target}"


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


async def run_lanes(target: str, path: Path) -> list[dict[str, str]]:
    """``python -m bench.lanes`` with 6 terminations and one deadline cancellation per
    shape; checks its table and returns the rows."""
    args = ["--terminations", "6", "--samples", "1", "--sample-every", "0", "--target", target]
    await lanes.main(lanes.parse_args(args))

    rows = rows_of(section_of(path, key("lanes", target)))
    assert [row["shape"] for row in rows] == [
        lanes.with_lanes({"stn": lanes.STN_LIMIT}).label,
        lanes.one_queue(lanes.STN_LIMIT).label,
    ]
    for row in rows:
        assert row["sTN terminations at once"] == "6", row
        assert row["Airalo cancellations, cut-off ~4 min away"] == "1", row
        assert row["terminations not completed"] == "0", row
        assert row["orders"] in ("1 CANCELLED", "1 MISSED_DEADLINE"), row
        ratio(row["sTN busiest 10 s, calls/s (vs cap 3)"])
    # With lanes the deadline call is sent (how soon is the benchmark's, not a test's).
    assert rows[0]["orders"] == "1 CANCELLED", rows[0]
    assert "not sent" not in rows[0]["start → cancel call at Airalo s, p50 / max"], rows[0]
    return rows


async def run_lane_rates(target: str, path: Path) -> list[dict[str, str]]:
    """``python -m bench.lane_rates`` with a wave of 4 + 4 + 2 sagas per shape."""
    args = ["--wave", "stn=4,rebilly=4,airalo=2", "--target", target]
    await lane_rates.main(lane_rates.parse_args(args))

    rows = rows_of(section_of(path, key("lane-rates", target)))
    sizes = {"stn": "4", "rebilly": "4", "airalo": "2"}
    assert [row["provider"] for row in rows] == [*sizes, *sizes]
    assert len({row["shape"] for row in rows}) == 2
    for row in rows:
        assert row["sagas"] == sizes[row["provider"]], row
        assert row["sagas not completed"] == "0", row
        assert int(row["calls at the provider"]) >= int(row["sagas"]), row
        assert f"{row['provider']} " in row["calls per saga by route"], row
        assert float(row["its limit, calls/s"]) == lane_rates.LIMITS[row["provider"]], row
        ratio(row["busiest vs limit"])
    return rows


async def run_scale(target: str, path: Path) -> list[list[dict[str, str]]]:
    """``python -m bench.scale`` with 12 pending sagas (chunks of 5), a wave of 4 of
    them, sTN's lane fast enough that their first polls spread over 2 s."""
    args = ["--pending", "12", "--chunk", "5", "--wave", "4"]
    args += ["--limits", "stn=5000,rebilly=5000,airalo=5000", "--target", target]
    await scale.main(scale.parse_args(args))

    chunks, footprint, waves, per_saga = tables_of(section_of(path, key("scale", target)))
    assert [row["sagas waiting"] for row in chunks] == ["5", "8"]
    for row in chunks:
        assert float(row["settled/s (first start → last waiting)"]) > 0, row
        assert float(row["worker RSS MiB"]) > 0, row
    (all_waiting,) = footprint
    assert all_waiting["sagas waiting at once"] == "12", all_waiting
    assert float(all_waiting["bytes per pending saga"].replace(",", "")) >= 0, all_waiting
    assert float(all_waiting["worker RSS MiB with all waiting"]) > 0, all_waiting
    assert [row["variant"].split(",")[0] for row in waves] == ["bare Temporal (submit", "product"]
    for row in waves:
        assert row["sagas"] == "4" and row["not completed"] == "0", row
        assert "late" not in row["last submit before wish date"], row
        ratio(row["drain vs bare"])
    assert [row["sagas"] for row in per_saga] == ["8", "4", "4"]
    for row in per_saga:
        assert int(row["state transitions"]) > 0 and int(row["history events"]) > 0, row
        assert float(row["server CPU ms"]) > 0 and float(row["worker CPU ms"]) > 0, row
    return [chunks, footprint, waves, per_saga]


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


async def test_a_bulk_reschedule_is_measured_against_one_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = use_report(tmp_path, monkeypatch)

    await bulk.main(bulk.parse_args(["--sagas", "10", "--singles", "3", "--target", "dev"]))

    rows = rows_of(section_of(path, "bulk"))
    assert [(row["way"], row["sagas rescheduled"]) for row in rows] == [
        ("one by one (cancelctl reschedule)", "3"),
        ("bulk (cancelctl bulk reschedule)", "10"),
    ]
    assert ratio(rows[0]["vs one by one"]) == 1.0
    ratio(rows[1]["vs one by one"])
    for row in rows:
        assert float(row["sagas/s"]) > 0 and float(row["server CPU ms/saga"]) > 0, row


async def test_outcome_events_on_and_off_and_their_latency_are_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m bench.outcomes --sagas 5 --blocks 1``: both throughput rows (two rounds
    each) and the latency row, every event delivered, the figures numbers (never their
    values)."""
    path = use_report(tmp_path, monkeypatch)
    monkeypatch.setattr(outcomes, "WARM_UP", WARM_UP)

    await outcomes.main(
        outcomes.parse_args(["--sagas", str(SAGAS), "--blocks", "1", "--rate", "5"])
    )

    section = section_of(path, "outcomes")
    throughput, latency = section.split("at a steady load:", 1)
    rows = rows_of(throughput)
    assert [row["way"] for row in rows] == [
        "events off (no subscription matches)",
        "events on (one subscription, every type)",
    ]
    for row in rows:
        assert row["sagas"] == str(2 * SAGAS), row  # two rounds each: off, on, on, off
        ratio(row["vs off"])
        assert float(row["completed sagas/s"]) > 0, row
        assert all(float(rate) > 0 for rate in row["rounds, sagas/s"].split(" / ")), row
        assert float(row["worker CPU ms/saga"]) > 0, row
    [steady] = rows_of(latency)
    assert steady["sagas"] == steady["events delivered"] == str(SAGAS)
    assert 0 <= float(steady["p50 ms"]) <= float(steady["p99 ms"]) <= float(steady["max ms"])


async def test_lanes_on_the_dev_server_send_the_deadline_call_beside_a_backlog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await run_lanes("dev", use_report(tmp_path, monkeypatch))


async def test_lane_rates_on_the_dev_server_report_every_provider_of_both_shapes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await run_lane_rates("dev", use_report(tmp_path, monkeypatch))


async def test_scale_on_the_dev_server_reads_the_footprint_and_both_waves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dev server keeps SQLite in its own process: its database column says so."""
    _, _, _, per_saga = await run_scale("dev", use_report(tmp_path, monkeypatch))

    assert {row["database CPU ms"] for row in per_saga} == {report.NOT_MEASURED}


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


def test_the_busiest_window_counts_the_most_calls_in_any_stretch_of_its_length() -> None:
    assert busiest_window([], 10) == 0
    assert busiest_window([5.0], 10) == 1
    # [0, 10) and [3, 13) hold four each; a window is half-open: 0 and 10 never together.
    assert busiest_window([0, 3, 9.9, 9.9, 10, 20, 29.8, 40], 10) == 4
    assert busiest_window([12, 0, 21.8, 15], 10) == 3


def test_a_lane_limit_is_worker_tuning_that_a_restart_replaces() -> None:
    env = {
        "PATH": "/bin",
        "CANCEL_STN_MAX_CALLS_PER_SECOND": "3",
        "CANCEL_WORKER_HOLD_PATCHES": "provider-lanes",
        "CANCEL_TASK_QUEUE": "cancellations",
    }

    assert tuned(env, {"CANCEL_REBILLY_MAX_CALLS_PER_SECOND": "10"}) == {
        "PATH": "/bin",
        "CANCEL_TASK_QUEUE": "cancellations",
        "CANCEL_REBILLY_MAX_CALLS_PER_SECOND": "10",
    }
