"""The benchmarks on the PostgreSQL-backed cluster (``make bench TARGET=cluster``), small.

Each test runs one benchmark with ``--target cluster`` and a handful of sagas on a
cluster of its own (``bench.target.running``: PostgreSQL, the four Temporal services,
the sandbox without a state file, one worker, the bare worker; about 10 s to start),
not on the suite's session cluster: a benchmark resets the sandbox and its settings,
which would wipe the call log that cluster's checks are kept against. The report is
a temporary file (the overhead test's starts with a dev server section, which must
come out unchanged).
What is checked is ``tests/test_bench_smoke.py``'s (every variant ran and completed,
ratios are numbers, CPU read from the right processes), plus what only the cluster
has: the sections' own keys and titles, PostgreSQL's CPU as the database figure, and
its databases' size as the pending sagas' footprint.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stacks.cluster.postgres import find_postgres
from tests.test_bench_smoke import (
    SAGAS,
    run_intake,
    run_lane_rates,
    run_lanes,
    run_overhead,
    run_scale,
    section_of,
    use_report,
)

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(
        find_postgres() is None,
        reason="PostgreSQL is not installed (apt-get install postgresql); the cluster runs on it",
    ),
]

DEV_SECTION = """# Performance and scale

<!-- bench:overhead -->
## 1. Overhead vs bare Temporal (immediate sTN terminations)

| variant | sagas |
|---|---|
| measured on the dev server | 300 |
<!-- /bench:overhead -->
"""


async def test_overhead_on_the_cluster_is_written_beside_the_dev_servers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = use_report(tmp_path, monkeypatch, seed=DEV_SECTION)

    section = await run_overhead("cluster", path, monkeypatch)

    assert "(cluster: PostgreSQL, 4 Temporal services, 4 history shards)" in section
    assert f"python -m bench.overhead --target cluster --sagas {SAGAS} --rounds 1" in section
    assert "target `cluster`" in section
    assert path.read_text().startswith(DEV_SECTION.rstrip("\n"))
    assert "| measured on the dev server | 300 |" in section_of(path, "overhead")


async def test_intake_on_the_cluster_counts_postgresql_as_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The postmaster and its backends (one per pooled connection of four services)
    work for every start: the figure is there and above nothing."""
    path = use_report(tmp_path, monkeypatch)

    rows = await run_intake("cluster", path)

    for row in rows:
        assert float(row["database CPU ms/saga"]) > 0, row


async def test_lanes_on_the_cluster_send_the_deadline_call_beside_a_backlog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = use_report(tmp_path, monkeypatch)

    await run_lanes("cluster", path)

    assert "target `cluster`" in section_of(path, "lanes-cluster")


async def test_lane_rates_on_the_cluster_report_every_provider_of_both_shapes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await run_lane_rates("cluster", use_report(tmp_path, monkeypatch))


async def test_scale_on_the_cluster_reads_postgresql_as_the_footprint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pending sagas grow PostgreSQL's databases, and its backends work for them."""
    chunks, footprint, _, per_saga = await run_scale("cluster", use_report(tmp_path, monkeypatch))

    assert float(footprint[0]["persistence on disk MiB before"]) > 0
    assert float(chunks[-1]["persistence on disk MiB"]) > 0
    for row in per_saga:
        assert float(row["database CPU ms"]) > 0, row
