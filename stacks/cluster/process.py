"""One supervised process of the cluster: started, awaited, stopped, killed on purpose.

``make run`` keeps its processes in a list inside ``starter.devstack.main``; the
cluster has more of them, some started and stopped on their own (a Temporal service,
one of N workers) by the fault tests, so each is a :class:`Service`. The readiness
wait and the stop timeout are devstack's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from starter.devstack import STARTUP_SECONDS, STOP_SECONDS, wait_for_port

ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class Service:
    """A process with its output in ``log``; ready once ``port`` accepts connections
    and, if set, once ``ready_line`` appears in what this start wrote to the log."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    port: int | None = None
    ready_line: str | None = None
    #: SIGINT for the Python processes (they shut down cleanly on it, as in devstack).
    graceful: signal.Signals = signal.SIGTERM
    startup_seconds: float = STARTUP_SECONDS
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    starts: int = 0
    #: Stopped or killed by the supervisor, not by itself.
    down_on_purpose: bool = False

    def start(self) -> None:
        """Spawn it in its own session (a kill takes its whole group) and wait until ready."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            out.write(
                f"\n--- start {self.starts + 1} at {datetime.now(UTC).isoformat()}\n".encode()
            )
            out.flush()
            offset = out.tell()
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        self.down_on_purpose = False
        if self.port is not None:
            wait_for_port(self.port, self.name, self.process)
        if self.ready_line is not None:
            self._wait_for_line(self.ready_line, offset)

    def _wait_for_line(self, line: str, offset: int) -> None:
        deadline = time.monotonic() + self.startup_seconds
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with code {self.process.returncode} during startup; "
                    f"see {self.log}"
                )
            with self.log.open("rb") as written:
                written.seek(offset)
                if line.encode() in written.read():
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} was not ready within {self.startup_seconds:.0f}s")

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def died(self) -> bool:
        """Exited although nobody stopped it."""
        return self.process is not None and not self.alive and not self.down_on_purpose

    def stop(self) -> None:
        """The graceful signal; SIGKILL when it does not go within devstack's timeout."""
        self.down_on_purpose = True
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(self.graceful)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the process and everything in its session: no goodbye."""
        self.down_on_purpose = True
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
