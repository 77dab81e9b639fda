"""Find or build the Temporal CLI (dev server + Web UI).

Order: ``$TEMPORAL_CLI``, a ``temporal`` on ``PATH``, the cached build, then
``go install github.com/temporalio/cli/cmd/temporal@v1.5.1`` into the cache.
Temporal's download site is never contacted (later tags carry a ``replace``
directive and cannot be installed by version).

``python -m config.temporal_cli`` prints the path, building it if needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CLI_MODULE = "github.com/temporalio/cli/cmd/temporal"
CLI_VERSION = "v1.5.1"


#: SQLite settings for the dev server's database file (``make run``, the test, reliability
#: and benchmark stacks). Left alone, the dev server keeps SQLite in rollback-journal
#: mode, which syncs a journal and the database on every transaction; write-ahead
#: logging with ``synchronous=normal`` syncs at checkpoints, and the database stays
#: consistent when the server process is killed (an OS crash or power loss can lose the
#: last transactions: acceptable for a dev server; production runs on PostgreSQL).
#: Measured: 1.7-1.9x the sagas per second, server CPU per saga 57-62 -> 39 ms
#: (docs/performance.md).
DEV_SERVER_SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")


#: Dynamic configuration the product relies on, for every dev server (``make run``, the
#: test, reliability and benchmark stacks); the cluster's is deploy/temporal/dynamicconfig.yaml.
#: Temporal Server 1.29 hands out tasks by priority (a provider lane's deadline calls
#: before its bulk work, ``domain/lanes.py``) only with its new matcher, and within one
#: task-queue partition: one partition per queue makes the order, and a lane's limit,
#: exact (a single dev server gains nothing from more; tests/fast/test_lanes.py).
#: Worker Versioning (README "Releases"): deployment versions and their routing are on
#: by default in 1.29, said explicitly; a version no longer current or ramping is
#: checked for open pinned runs every 5 s after 5 s (the server's 3 min each would make
#: a local release, and its test, wait minutes to see a version drained).
DEV_SERVER_DYNAMIC_CONFIG = {
    "matching.useNewMatcher": "true",
    "matching.numTaskqueueReadPartitions": "1",
    "matching.numTaskqueueWritePartitions": "1",
    "system.enableDeploymentVersions": "true",
    "frontend.workerVersioningWorkflowAPIs": "true",
    "matching.wv.VersionDrainageStatusVisibilityGracePeriod": '"5s"',
    "matching.wv.VersionDrainageStatusRefreshInterval": '"5s"',
}


def dev_server_config_flags() -> list[str]:
    """``temporal server start-dev`` arguments for :data:`DEV_SERVER_DYNAMIC_CONFIG`."""
    flags = []
    for key, value in DEV_SERVER_DYNAMIC_CONFIG.items():
        flags += ["--dynamic-config-value", f"{key}={value}"]
    return flags


def dev_server_database_flags(path: Path) -> list[str]:
    """``temporal server start-dev`` arguments for a database file at ``path`` (and the
    product's dynamic configuration, :func:`dev_server_config_flags`)."""
    flags = ["--db-filename", str(path)]
    for pragma in DEV_SERVER_SQLITE_PRAGMAS:
        flags += ["--sqlite-pragma", pragma]
    return flags + dev_server_config_flags()


class TemporalCliUnavailable(RuntimeError):
    pass


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cancellation-orchestrator" / f"temporal-cli-{CLI_VERSION}"


def find_temporal_cli() -> Path | None:
    """The CLI to use if one is already there, without building anything."""
    explicit = os.environ.get("TEMPORAL_CLI")
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise TemporalCliUnavailable(f"TEMPORAL_CLI={explicit} is not an executable file")
        return path
    on_path = shutil.which("temporal")
    if on_path:
        return Path(on_path)
    cached = cache_dir() / "temporal"
    return cached if cached.is_file() else None


def ensure_temporal_cli() -> Path:
    """Return the CLI's path, building it with Go into the cache when missing."""
    found = find_temporal_cli()
    if found:
        return found
    go = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").is_file() else None
    )
    if go is None:
        raise TemporalCliUnavailable(
            "No Temporal CLI found and Go is not installed. Either install Go (>= 1.23) so "
            f"`go install {CLI_MODULE}@{CLI_VERSION}` can build it, put a `temporal` binary "
            "on PATH, or set TEMPORAL_CLI=/path/to/temporal."
        )
    target = cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    print(
        f"Building the Temporal CLI {CLI_VERSION} into {target} (first run only, ~3 min)...",
        file=sys.stderr,
    )
    env = {**os.environ, "GOBIN": str(target)}
    result = subprocess.run([go, "install", f"{CLI_MODULE}@{CLI_VERSION}"], env=env, check=False)
    binary = target / "temporal"
    if result.returncode != 0 or not binary.is_file():
        raise TemporalCliUnavailable(
            f"`go install {CLI_MODULE}@{CLI_VERSION}` failed (exit {result.returncode}); "
            "see the output above. Set TEMPORAL_CLI to an existing binary to skip the build."
        )
    return binary


def main() -> int:
    try:
        print(ensure_temporal_cli())
    except TemporalCliUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
