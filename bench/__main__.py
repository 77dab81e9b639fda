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

from bench import (
    bulk,
    calls,
    cli,
    intake,
    lane_rates,
    lanes,
    operator_latency,
    outcomes,
    overhead,
    report,
    scale,
    wave,
)

FULL = {
    "overhead": ["--sagas", "300", "--rounds", "2"],
    "wave": ["--sagas", "10000", "--variants", "bare,tuned"],
    "calls": ["--sagas", "20"],
    "intake": ["--sagas", "300"],
    "bulk": ["--sagas", "10000", "--singles", "300"],
    "outcomes": ["--sagas", "500", "--blocks", "4", "--rate", "10"],
    "lanes": ["--terminations", "600", "--samples", "5", "--sample-every", "30"],
    "lane-rates": ["--wave", "stn=600,rebilly=600,airalo=150"],
    "scale": ["--pending", "100000", "--chunk", "10000", "--wave", "10000"],
    "operator": ["--sagas", "300", "--revokes", "5"],
}
QUICK = {
    "overhead": ["--sagas", "100", "--rounds", "1"],
    "wave": ["--sagas", "1000"],
    "calls": ["--sagas", "5"],
    "intake": ["--sagas", "100"],
    "bulk": ["--sagas", "300", "--singles", "60"],
    "outcomes": ["--sagas", "60", "--blocks", "1", "--rate", "10"],
    "lanes": ["--terminations", "120", "--samples", "3", "--sample-every", "20"],
    "lane-rates": ["--wave", "stn=200,rebilly=200,airalo=50"],
    # Limits 5x the full run's: the first polls' window (sized for 10,000 at sTN's
    # limit) shrinks to 100 s, in proportion to the smaller wave.
    "scale": [
        *("--pending", "3000", "--chunk", "1000", "--wave", "1000"),
        *("--limits", "stn=100,rebilly=50,airalo=25"),
    ],
    "operator": ["--sagas", "100", "--revokes", "3"],
}
#: Run only on these targets unless ``--only`` names them: 100,000 pending sagas are
#: measured on the cluster's PostgreSQL, not on the dev server's SQLite.
TARGETS_OF = {"scale": ("cluster",)}
BENCHMARKS = (
    ("overhead", overhead),
    ("wave", wave),
    ("calls", calls),
    ("intake", intake),
    ("bulk", bulk),
    ("outcomes", outcomes),
    ("lanes", lanes),
    ("lane-rates", lane_rates),
    ("scale", scale),
    ("operator", operator_latency),
)


async def main(args: argparse.Namespace) -> None:
    sizes = QUICK if args.quick else FULL
    target = ["--target", args.target]
    began = time.monotonic()
    for name, module in BENCHMARKS:
        if args.only and name not in args.only.split(","):
            continue
        if not args.only and args.target not in TARGETS_OF.get(name, (args.target,)):
            continue
        print(f"\n== {name} ({time.monotonic() - began:.0f} s in)", flush=True)
        await module.main(module.parse_args([*sizes[name], *target]))
    print(f"\nall done in {time.monotonic() - began:.0f} s; see {report.report_path()}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = cli.parser("python -m bench", __doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, a few minutes")
    parser.add_argument(
        "--only", help=f"comma-separated subset: {','.join(name for name, _ in BENCHMARKS)}"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    cli.run(main(parse_args()))
