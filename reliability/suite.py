"""Runs the chosen scenarios one after the other and writes the report."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from reliability.report import print_summary, write_report
from reliability.run import Options, Scenario, ScenarioResult, run_scenario


async def run_suite(
    scenarios: Sequence[Scenario],
    options: Options,
    *,
    report: Path | None,
    command: str,
    workdir: Path | None = None,
    keep: bool = False,
    concurrently: bool = False,
) -> list[ScenarioResult]:
    """Each scenario on its own fresh stack, one after the other (``concurrently``: all
    at once, for a quick smoke run; their numbers then disturb each other). The work
    directory (data, logs) is removed afterwards unless ``keep`` or something failed."""
    root = workdir or Path(tempfile.mkdtemp(prefix="reliability-"))
    if concurrently:
        runs = (run_scenario(scenario, options, root) for scenario in scenarios)
        results = list(await asyncio.gather(*runs))
    else:
        results = [await run_scenario(scenario, options, root) for scenario in scenarios]
    print_summary(results)
    if report is not None:
        write_report(report, results, options, command)
        print(f"\nreport written to {report}")
    if keep or any(result.failed for result in results):
        print(f"data and logs kept in {root}")
    elif workdir is None:
        shutil.rmtree(root, ignore_errors=True)
    return results
