"""``python -m reliability [--scenario NAME ...] [--sagas N] [--seed S] [--report PATH]``.

Exit code 0 when every scenario ran with zero violations, 1 otherwise (each violation
is listed with its business key and why), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from reliability.run import Options
from reliability.scenarios import BY_NAME, SCENARIOS
from reliability.suite import run_suite

DEFAULT_REPORT = Path("docs/reliability.md")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m reliability",
        description="Run sagas under worker crashes, server restarts, provider faults, "
        "duplicate storms, hostile and poison input; check that nothing is lost or doubled.",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=sorted(BY_NAME),
        metavar="NAME",
        help=f"run only this scenario (repeatable): {', '.join(BY_NAME)}",
    )
    parser.add_argument("--sagas", type=int, default=200, help="sagas per scenario (200)")
    parser.add_argument("--seed", type=int, default=1, help="workload and fault seed (1)")
    parser.add_argument(
        "--report",
        type=Path,
        help=f"where to write the report (default: {DEFAULT_REPORT} for the full run, "
        "none for a partial one, so that a development run never replaces the record); "
        "'none' for no report",
    )
    parser.add_argument("--quick", action="store_true", help="short outages and windows (smoke)")
    parser.add_argument(
        "--settle-seconds", type=float, default=300.0, help="how long sagas may take to settle"
    )
    parser.add_argument("--workdir", type=Path, help="keep data and logs here")
    args = parser.parse_args(argv)
    if args.sagas < 1:
        parser.error("--sagas must be at least 1")
    return args


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM (e.g. a CI timeout): unwind, so that every stack stops its processes."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminated)
    scenarios = [BY_NAME[name] for name in args.scenario] if args.scenario else list(SCENARIOS)
    options = Options(
        sagas=args.sagas, seed=args.seed, quick=args.quick, settle_seconds=args.settle_seconds
    )
    given = list(sys.argv[1:] if argv is None else argv)
    defaults = (args.scenario, args.sagas, args.seed, args.quick) == (None, 200, 1, False)
    command = "make reliability" if defaults else "python -m reliability " + shlex.join(given)
    report = args.report or (DEFAULT_REPORT if defaults else None)
    if str(report) == "none":
        report = None
    results = asyncio.run(
        run_suite(scenarios, options, report=report, command=command, workdir=args.workdir)
    )
    return 1 if any(result.failed for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
