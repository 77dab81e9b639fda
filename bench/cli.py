"""Running a benchmark from the command line: stopped cleanly by SIGTERM too.

``timeout`` and CI stop a process with SIGTERM, which skips ``atexit`` and
``finally``: the private stack's server, sandbox and workers would outlive the
benchmark. Here SIGTERM raises ``SystemExit`` instead, so they are stopped.

A target that cannot run here (``cluster`` without PostgreSQL's binaries, or without
Temporal Server and no Go to build it) ends the run with its reason, not a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Coroutine
from types import FrameType
from typing import Any, NoReturn

from bench.target import TARGETS
from config.temporal_server import TemporalServerUnavailable
from stacks.cluster.postgres import PostgresUnavailable


def _exit(signum: int, _frame: FrameType | None) -> NoReturn:
    raise SystemExit(128 + signum)


def run(main: Coroutine[Any, Any, Any]) -> None:
    """Run ``main``; a target this machine cannot run ends it with its reason, exit 1."""
    signal.signal(signal.SIGTERM, _exit)
    try:
        asyncio.run(main)
    except (PostgresUnavailable, TemporalServerUnavailable) as error:
        raise SystemExit(f"bench: {error}") from None


def parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """A benchmark's argument parser, with the ``--target`` every benchmark takes."""
    parsed = argparse.ArgumentParser(prog=prog, description=description)
    parsed.add_argument("--target", default="dev", choices=TARGETS)
    return parsed
