"""One supervised process of a stack: started, awaited, stopped, killed on purpose.

Every stack (``make run``, ``make cluster``, the reliability and bench harnesses, the
tests' worker and stack processes) runs its processes as :class:`Service`: spawned in
a session of its own (so a SIGKILL takes its whole process group, and a Ctrl-C in
the terminal reaches only the stack's own supervisor), its output appended to a log
file (or, with no log, to the supervisor's terminal), ready once its port accepts
connections, a line appears in what this start wrote to its log and/or a URL answers
200, each within one deadline; stopped with its graceful signal and a timeout, then
SIGKILLed with everything it started.

The core is synchronous; an async caller wraps a call in ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import httpx

from stacks.ports import port_is_open

ROOT = Path(__file__).resolve().parent.parent
#: How long a process may take to become ready (a Temporal service, a worker).
STARTUP_SECONDS = 60.0
#: How long a process may take to stop on its graceful signal before it is killed.
STOP_SECONDS = 15.0
POLL_SECONDS = 0.2
#: How much of its log a start-up error shows.
LOG_TAIL_LINES = 20


class StartupFailed(RuntimeError):
    """The process exited, or was not ready in time, during its start-up."""


@dataclass
class Service:
    """A process with its output in ``log`` (``None``: the supervisor's own output)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path | None = None
    #: Ready once 127.0.0.1:``port`` accepts connections ...
    port: int | None = None
    #: ... and ``ready_line`` appears in what this start wrote to the log ...
    ready_line: str | None = None
    #: ... and a GET of ``ready_url`` answers 200 (e.g. the API's ``/readyz``).
    ready_url: str | None = None
    #: SIGINT for the product's Python processes: they finish in-flight work on it.
    graceful: signal.Signals = signal.SIGTERM
    startup_seconds: float = STARTUP_SECONDS
    stop_seconds: float = STOP_SECONDS
    cwd: Path = ROOT
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    starts: int = 0
    #: Stopped or killed by the supervisor, not by itself.
    down_on_purpose: bool = False
    _offset: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if self.ready_line is not None and self.log is None:
            raise ValueError(f"{self.name}: a ready line is read from a log; give one")

    # -- start ---------------------------------------------------------------------

    def start(self) -> None:
        """Spawn it in its own session and wait until it is ready (or raise
        :class:`StartupFailed`, saying where its log is)."""
        self.process = self._spawn()
        self.starts += 1
        self.down_on_purpose = False
        awaited = (self.port, self.ready_line, self.ready_url) != (None, None, None)
        deadline = time.monotonic() + self.startup_seconds
        while True:
            # One that exited fails its start even if its port answers (someone else's).
            if awaited and self.process.poll() is not None:
                raise StartupFailed(
                    f"{self.name} exited with code {self.process.returncode} during "
                    f"start-up{self._see_log()}"
                )
            if self._ready():
                return
            if time.monotonic() > deadline:
                raise StartupFailed(
                    f"{self.name} was not ready within {self.startup_seconds:.0f}s{self._see_log()}"
                )
            time.sleep(POLL_SECONDS)

    def _spawn(self) -> subprocess.Popen[bytes]:
        if self.log is None:
            return subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, start_new_session=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            out.write(
                f"\n--- start {self.starts + 1} at {datetime.now(UTC).isoformat()}\n".encode()
            )
            out.flush()
            self._offset = out.tell()
            return subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _ready(self) -> bool:
        if self.port is not None and not port_is_open(self.port):
            return False
        if self.ready_line is not None and self.ready_line not in self.output():
            return False
        return self.ready_url is None or _answers_ok(self.ready_url)

    def _see_log(self) -> str:
        """Where its log is, and its last lines (the log of a test's process may be gone
        by the time someone reads the error)."""
        if self.log is None:
            return ""
        tail = "\n".join(self.output().splitlines()[-LOG_TAIL_LINES:])
        return f"; see {self.log}" + (f", which ends:\n{tail}" if tail else "")

    def output(self) -> str:
        """What the current (or last) start wrote to the log."""
        if self.log is None or not self.log.is_file():
            return ""
        with self.log.open("rb") as written:
            written.seek(self._offset)
            return written.read().decode(errors="replace")

    # -- state ---------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def died(self) -> bool:
        """Exited although nobody stopped it."""
        return self.process is not None and not self.alive and not self.down_on_purpose

    # -- stop ----------------------------------------------------------------------

    def stop(self) -> int | None:
        """The graceful signal; SIGKILL (:meth:`kill`) when it does not go in time.

        Returns its exit code; ``None`` when it had to be killed or never ran.
        """
        self.down_on_purpose = True
        process = self.process
        if process is None:
            return None
        if process.poll() is not None:
            return process.returncode
        process.send_signal(self.graceful)
        try:
            return process.wait(timeout=self.stop_seconds)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        """SIGKILL its process group and those of the processes it started in sessions
        of their own (a supervisor's children): no goodbye."""
        self.down_on_purpose = True
        process = self.process
        if process is None or process.poll() is not None:
            return
        # Noted first: once the parent is gone, its children are no longer below it.
        for pid in (process.pid, *descendants(process.pid)):
            kill_group(pid)
        process.wait()


def stop_in_reverse(services: Sequence[Service], *, say: bool = False) -> None:
    """Stop ``services`` last-started first; ``say``: print each that still runs, for a
    person watching the stack stop."""
    for service in reversed(services):
        if say and service.alive:
            print(f"stopping {service.name}...", flush=True)
        service.stop()


def stop_signals() -> Callable[[], bool]:
    """From now on SIGINT (Ctrl-C) and SIGTERM only ask a foreground stack to stop: the
    returned function says whether one came, and its supervisor stops all in order."""
    asked = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        asked.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return asked.is_set


def _answers_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5.0).status_code == 200
    except httpx.TransportError:
        return False


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, from /proc (Linux)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 4 is the parent; the command (field 2) may contain spaces, so split after it.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    pending = [pid]
    while pending:
        children = parents.get(pending.pop(), [])
        found.extend(children)
        pending.extend(children)
    return found


def kill_group(pid: int) -> None:
    """SIGKILL the process group ``pid`` is in (gone already: nothing to do)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(os.getpgid(pid), signal.SIGKILL)
