"""Running a benchmark from the command line: stopped cleanly by SIGTERM too.

``timeout`` and CI stop a process with SIGTERM, which skips ``atexit`` and
``finally``: the private stack's server, sandbox and workers would outlive the
benchmark. Here SIGTERM raises ``SystemExit`` instead, so they are stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Coroutine
from types import FrameType
from typing import Any, NoReturn

from bench.target import TARGETS


def _exit(signum: int, _frame: FrameType | None) -> NoReturn:
    raise SystemExit(128 + signum)


def run(main: Coroutine[Any, Any, Any]) -> None:
    """Run ``main``; a target that is not wired yet ends it with its reason, exit 2."""
    signal.signal(signal.SIGTERM, _exit)
    try:
        asyncio.run(main)
    except NotImplementedError as error:
        raise SystemExit(f"bench: {error}") from None


def parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """A benchmark's argument parser, with the ``--target`` every benchmark takes."""
    parsed = argparse.ArgumentParser(prog=prog, description=description)
    parsed.add_argument("--target", default="dev", choices=TARGETS)
    return parsed
