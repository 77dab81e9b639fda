"""Find or build Temporal Server, its SQL schema tool and the Web UI server for ``make cluster``.

The sibling of ``config.temporal_cli``: the same cache
(``~/.cache/cancellation-orchestrator/``), the same rule that only the Go module
proxy is used (``go install module/cmd@version``, never a download site):

- ``server`` and ``sql`` from ``go.temporal.io/server`` v1.29.1, the server version
  the dev server of Temporal CLI v1.5.1 embeds, into ``temporal-server-v1.29.1/``;
- ``server`` from ``github.com/temporalio/ui-server/v2`` v2.42.1, the Web UI the CLI
  embeds (its assets ship inside the module), into ``temporal-ui-server-v2.42.1/``:
  both binaries are called ``server``, so each module has its own directory.

Order per binary: an explicit path in the environment (``TEMPORAL_SERVER``,
``TEMPORAL_SQL_TOOL``, ``TEMPORAL_UI_SERVER``), the cached build, then ``go install``.
There is no ``PATH`` lookup: the schema the tool sets up must be the server's own
version, and ``server``/``sql`` are too generic to trust by name.

``python -m config.temporal_server [--no-ui]`` prints the paths, building what is missing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from config.temporal_cli import cache_dir as cli_cache_dir

SERVER_MODULE = "go.temporal.io/server"
SERVER_VERSION = "v1.29.1"
UI_SERVER_MODULE = "github.com/temporalio/ui-server/v2"
UI_SERVER_VERSION = "v2.42.1"


class TemporalServerUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class GoBinary:
    """One binary ``go install`` builds from a module at a fixed version."""

    package: str
    version: str
    #: The file ``go install`` writes (the package path's last element).
    filename: str
    #: The environment variable naming an existing binary instead.
    env: str
    #: The cache directory's name under ``~/.cache/cancellation-orchestrator``.
    directory: str

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}"

    def cache_dir(self) -> Path:
        return cli_cache_dir().parent / self.directory

    def cached(self) -> Path:
        return self.cache_dir() / self.filename


SERVER = GoBinary(
    f"{SERVER_MODULE}/cmd/server",
    SERVER_VERSION,
    "server",
    "TEMPORAL_SERVER",
    f"temporal-server-{SERVER_VERSION}",
)
SQL_TOOL = GoBinary(
    f"{SERVER_MODULE}/cmd/tools/sql",
    SERVER_VERSION,
    "sql",
    "TEMPORAL_SQL_TOOL",
    f"temporal-server-{SERVER_VERSION}",
)
UI_SERVER = GoBinary(
    f"{UI_SERVER_MODULE}/cmd/server",
    UI_SERVER_VERSION,
    "server",
    "TEMPORAL_UI_SERVER",
    f"temporal-ui-server-{UI_SERVER_VERSION}",
)


@dataclass(frozen=True)
class ServerBinaries:
    server: Path
    sql: Path
    #: ``None``: not asked for.
    ui: Path | None = None


def find_binary(binary: GoBinary) -> Path | None:
    """The binary to use if one is already there, without building anything."""
    explicit = os.environ.get(binary.env)
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise TemporalServerUnavailable(f"{binary.env}={explicit} is not an executable file")
        return path
    cached = binary.cached()
    return cached if cached.is_file() else None


def find_go() -> str | None:
    fallback = Path("/usr/local/go/bin/go")
    return shutil.which("go") or (str(fallback) if fallback.is_file() else None)


@contextlib.contextmanager
def _build_lock(directory: Path) -> Iterator[None]:
    """One build per cache directory at a time (two ``make`` targets may ask at once)."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_binary(binary: GoBinary) -> Path:
    """Return the binary's path, building it with Go into the cache when missing."""
    found = find_binary(binary)
    if found:
        return found
    go = find_go()
    if go is None:
        raise TemporalServerUnavailable(
            f"No {binary.filename} of {binary.package} found and Go is not installed. Install "
            f"Go (>= 1.25) so `go install {binary.spec}` can build it, or set "
            f"{binary.env}=/path/to/{binary.filename}."
        )
    target = binary.cache_dir()
    with _build_lock(target):
        if binary.cached().is_file():  # built by whoever held the lock
            return binary.cached()
        print(
            f"Building {binary.spec} into {target} (first run only, ~2 min)...",
            file=sys.stderr,
            flush=True,
        )
        began = time.monotonic()
        env = {**os.environ, "GOBIN": str(target)}
        result = subprocess.run([go, "install", binary.spec], env=env, check=False)
        if result.returncode != 0 or not binary.cached().is_file():
            raise TemporalServerUnavailable(
                f"`go install {binary.spec}` failed (exit {result.returncode}); see the output "
                f"above. Set {binary.env} to an existing binary to skip the build."
            )
        print(f"Built {binary.cached()} in {time.monotonic() - began:.0f} s", file=sys.stderr)
        return binary.cached()


def ensure_server_binaries(*, ui: bool = True) -> ServerBinaries:
    """Server and schema tool (and the Web UI server unless ``ui=False``)."""
    return ServerBinaries(
        server=ensure_binary(SERVER),
        sql=ensure_binary(SQL_TOOL),
        ui=ensure_binary(UI_SERVER) if ui else None,
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        binaries = ensure_server_binaries(ui="--no-ui" not in args)
    except TemporalServerUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for path in (binaries.server, binaries.sql, binaries.ui):
        if path is not None:
            print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
