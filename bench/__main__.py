"""``python -m bench`` (``make bench``): all five benchmarks, each on a stack of its own,
each writing its section of ``docs/performance.md`` (``BENCH_REPORT=PATH``: that file).

The default sizes take 29 minutes on this 2-core machine with nothing else running
(docs/performance.md): the two 10,000-saga waves, bare and product, are 22 of them,
each draining at the dev server's pace of about 30 sagas/s.
``--quick`` runs every benchmark small (a few minutes, for trying changes out).
``--target cluster`` (``make bench TARGET=cluster``) runs them on the PostgreSQL-backed
cluster and writes sections of its own beside the dev server's.
"""

from __future__ import annotations

import argparse
import time

from bench import calls, cli, intake, operator_latency, overhead, report, wave

FULL = {
    "overhead": ["--sagas", "300", "--rounds", "2"],
    "wave": ["--sagas", "10000", "--variants", "bare,tuned"],
    "calls": ["--sagas", "20"],
    "intake": ["--sagas", "300"],
    "operator": ["--sagas", "300", "--revokes", "5"],
}
QUICK = {
    "overhead": ["--sagas", "100", "--rounds", "1"],
    "wave": ["--sagas", "1000"],
    "calls": ["--sagas", "5"],
    "intake": ["--sagas", "100"],
    "operator": ["--sagas", "100", "--revokes", "3"],
}


async def main(args: argparse.Namespace) -> None:
    sizes = QUICK if args.quick else FULL
    target = ["--target", args.target]
    began = time.monotonic()
    for name, module in (
        ("overhead", overhead),
        ("wave", wave),
        ("calls", calls),
        ("intake", intake),
        ("operator", operator_latency),
    ):
        if args.only and name not in args.only.split(","):
            continue
        print(f"\n== {name} ({time.monotonic() - began:.0f} s in)", flush=True)
        await module.main(module.parse_args([*sizes[name], *target]))
    print(f"\nall done in {time.monotonic() - began:.0f} s; see {report.report_path()}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = cli.parser("python -m bench", __doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, a few minutes")
    parser.add_argument(
        "--only", help="comma-separated subset: overhead,wave,calls,intake,operator"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    cli.run(main(parse_args()))
