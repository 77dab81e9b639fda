"""``docs/performance.md``: one section per benchmark, rewritten by its latest run.

Each section carries the command that produced it, when, and on what (cores,
memory, the load average when it was written, Python, temporalio, Temporal CLI and
server versions, target), so figures from different runs are never mistaken for one
run's. Sections live between ``<!-- bench:KEY -->`` markers; the text outside them
(the introduction) is kept as it is.

A benchmark on the cluster (``--target cluster``) writes its section under a key of
its own (``overhead-cluster``, ...; after the dev server's, in :data:`ORDER`) and
says so in its title: it never replaces the dev server's figures, and the two are
read side by side. ``BENCH_REPORT=PATH`` writes to another file (tests, trial runs).
"""

from __future__ import annotations

import functools
import os
import platform
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from config.temporal_cli import ensure_temporal_cli
from config.temporal_server import SERVER_VERSION
from stacks.cluster.ports import TEMPORAL_SERVICES
from stacks.cluster.postgres import find_postgres
from stacks.cluster.stack import NUM_HISTORY_SHARDS

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "performance.md"
#: Another report file instead of :data:`REPORT`.
REPORT_ENV = "BENCH_REPORT"
KEYS = (
    "overhead",
    "wave",
    "calls",
    "intake",
    "lanes",
    "lane-rates",
    "scale",
    "outcomes",
    "bulk",
    "operator",
    "profile",
)
#: What a section's title adds on a target other than the dev server.
TARGET_TITLES = {
    "cluster": (
        f"cluster: PostgreSQL, {len(TEMPORAL_SERVICES)} Temporal services, "
        f"{NUM_HISTORY_SHARDS} history shards"
    )
}
ORDER = KEYS + tuple(f"{key}-{target}" for target in TARGET_TITLES for key in KEYS)
#: A figure the target has no process for (the dev server has no separate database).
NOT_MEASURED = "-"

INTRO = """# Performance and scale

Measured by `make bench` (`python -m bench`; each benchmark also runs alone, e.g.
`python -m bench.wave --sagas 2000`). Every ratio compares the product with bare
Temporal **on the same server in the same run** (`bench/bare.py`: a workflow of the
same shape with nothing of the product around it, in its own worker process with the
SDK's default options and the product's data converter). Absolute figures depend on
the machine and on what else ran on it (the load average is noted per section); the
ratios, and the CPU seconds each process spent per saga, are what to compare.
The sizing advice drawn from these figures is in README.md, "Sizing".
"""


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    command: str
    about: str
    body: str


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def cpu_ms_per_saga(cpu: Mapping[str, float], process: str, sagas: int) -> str:
    """``process``'s CPU milliseconds per saga, or :data:`NOT_MEASURED` where the
    target has no such process (``cpu`` then has no entry for it)."""
    if process not in cpu:
        return NOT_MEASURED
    return f"{1000 * cpu[process] / max(1, sagas):.1f}"


def _memory_gib() -> float:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return 0.0


@functools.cache
def temporal_version() -> str:
    try:
        out = subprocess.run(
            [str(ensure_temporal_cli()), "--version"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.strip().removeprefix("temporal version ")


@functools.cache
def postgres_version() -> str:
    """``PostgreSQL 15.18`` (from ``postgres (PostgreSQL) 15.18 (Debian ...)``)."""
    found = find_postgres()
    number = re.search(r"\(PostgreSQL\) (\S+)", found.version) if found else None
    return f"PostgreSQL {number.group(1)}" if number else "PostgreSQL (version unknown)"


def engine(target: str) -> str:
    """What the target's Temporal runs on."""
    if target == "cluster":
        return f"Temporal Server {SERVER_VERSION}, {postgres_version()}"
    return f"Temporal CLI {temporal_version()}"


def machine(target: str) -> str:
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; target `{target}`; "
        f"{os.cpu_count()} cores, {_memory_gib():.0f} GiB; load average {load}; "
        f"Python {platform.python_version()}, temporalio {version('temporalio')}, "
        f"{engine(target)}"
    )


def for_target(section: Section, target: str) -> Section:
    """``section`` as ``target`` writes it: the dev server's as it is; another target's
    under ``KEY-TARGET``, its title saying where it ran, its command with ``--target``."""
    if target == "dev":
        return section
    # "python -m bench.wave --sagas ...": the option goes after the module.
    words = section.command.split(" ", 3)
    return replace(
        section,
        key=f"{section.key}-{target}",
        title=f"{section.title} ({TARGET_TITLES[target]})",
        command=" ".join([*words[:3], f"--target {target}", *words[3:]]),
    )


def report_path() -> Path:
    """:data:`REPORT`, or the file ``BENCH_REPORT`` names."""
    return Path(os.environ.get(REPORT_ENV) or REPORT)


def render(section: Section, target: str) -> str:
    about = "\n".join(line.rstrip() for line in section.about.strip().splitlines()[2:]).strip()
    return (
        f"<!-- bench:{section.key} -->\n## {section.title}\n\n"
        f"`{section.command}` - {machine(target)}\n\n"
        f"{section.body}\n\n{about}\n<!-- /bench:{section.key} -->"
    )


def write(section: Section, target: str, path: Path = REPORT) -> None:
    """Replace ``section`` in the report (or add it, in :data:`ORDER`)."""
    text = path.read_text() if path.exists() else INTRO
    blocks = dict(
        re.findall(r"<!-- bench:([\w-]+) -->\n(.*?)\n<!-- /bench:\1 -->", text, flags=re.DOTALL)
    )
    intro = text.split("<!-- bench:", 1)[0].rstrip() + "\n"
    rendered = render(section, target)
    blocks[section.key] = rendered.split("\n", 1)[1].rsplit("\n", 1)[0]
    keys = [key for key in ORDER if key in blocks] + sorted(set(blocks) - set(ORDER))
    parts = [f"<!-- bench:{key} -->\n{blocks[key]}\n<!-- /bench:{key} -->" for key in keys]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(intro + "\n" + "\n\n".join(parts) + "\n")


def publish(section: Section, target: str) -> str:
    """Write ``section`` (as ``target`` writes it) into the report and print its table;
    returns the table."""
    write(for_target(section, target), target, report_path())
    print(section.body)
    return section.body
