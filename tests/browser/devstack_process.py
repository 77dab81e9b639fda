"""``make run``'s stack as a test starts it: ``python -m starter.devstack`` in a subprocess.

The stack gets free ports and a temporary data directory, and an environment
cleaned of what the test session or the developer's shell set for other purposes
(``tests/conftest.py`` sets fixed payload keys, a shell may hold API keys or a
Temporal address), so it behaves as a plain ``make run`` in a fresh checkout: a
generated dev API key, a generated codec token, a generated dev payload key. What a
person reads off the banner (URLs, the dev key, the codec token) is parsed from it.

Stopping is what Ctrl-C does: SIGINT to devstack, which stops its children in order;
only if that hangs past the deadline are devstack's process group and every
process it started killed.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tests.helpers import eventually_sync

ROOT = Path(__file__).resolve().parent.parent.parent
# Dev server, sandbox, codec server, worker and API, one after the other, on 2 shared cores.
STARTUP_SECONDS = 120.0
# devstack gives each child up to 15 s to stop; five children.
STOP_SECONDS = 90.0
BANNER_END = "Ctrl-C stops everything."
STOPPED = "stopped; saga state is kept in"

# Variables a plain `make run` would not see: the test session's, or another setup's.
_FOREIGN_PREFIXES = ("CO_TEST_", "CANCEL_", "DEVSTACK_", "STN_", "REBILLY_", "AIRALO_")
_KEPT_TEMPORAL = frozenset({"TEMPORAL_CLI"})


@dataclass(frozen=True)
class StackPorts:
    temporal: int
    ui: int
    sandbox: int
    api: int
    codec: int

    def all(self) -> tuple[int, ...]:
        return (self.temporal, self.ui, self.sandbox, self.api, self.codec)


def free_ports() -> StackPorts:
    """Five distinct free loopback ports (all held open together while chosen)."""
    with ExitStack() as held:
        ports = []
        for _ in range(5):
            probe = held.enter_context(socket.socket())
            probe.bind(("127.0.0.1", 0))
            ports.append(int(probe.getsockname()[1]))
    return StackPorts(*ports)


def port_is_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class Banner:
    """What `make run` prints for a person to use."""

    ui_url: str
    api_url: str
    api_key: str
    codec_endpoint: str | None
    codec_token: str | None

    @classmethod
    def parse(cls, text: str) -> Banner:
        def field(label: str, required: bool = True) -> str | None:
            found = re.search(rf"^\s*{re.escape(label)}\s+(\S+)", text, re.MULTILINE)
            if found is None and required:
                raise AssertionError(f"`make run`'s banner has no {label!r} line:\n{text}")
            return found.group(1) if found else None

        ui = field("Temporal Web UI")
        api = field("HTTP API")
        key = field("API dev key")
        assert ui is not None and api is not None and key is not None
        return cls(
            ui_url=ui.removesuffix("/namespaces/default/workflows"),
            api_url=api,
            api_key=key,
            codec_endpoint=field("Codec server", required=False),
            codec_token=field("Codec token", required=False),
        )


class DevStack:
    """One `make run` stack: started by :meth:`start`, stopped by :meth:`stop`."""

    def __init__(self, data_dir: Path, *, ui_codec: bool = True) -> None:
        self.ports = free_ports()
        self.data_dir = data_dir
        self.ui_codec = ui_codec
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._secrets: list[str] = []

    def environment(self) -> dict[str, str]:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(_FOREIGN_PREFIXES)
            and (not name.startswith("TEMPORAL_") or name in _KEPT_TEMPORAL)
        }
        env.update(
            {
                "TEMPORAL_PORT": str(self.ports.temporal),
                "TEMPORAL_UI_PORT": str(self.ports.ui),
                "SANDBOX_PORT": str(self.ports.sandbox),
                "CANCEL_API_PORT": str(self.ports.api),
                "CANCEL_CODEC_SERVER_PORT": str(self.ports.codec),
                "DEVSTACK_DATA_DIR": str(self.data_dir),
                # The generated dev payload key lives with this stack, not in the checkout.
                "CANCEL_CODEC_DEV_KEY_FILE": str(self.data_dir / "dev-codec-key.json"),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if not self.ui_codec:
            env["DEVSTACK_UI_CODEC"] = "off"
        return env

    def start(self) -> Banner:
        """Start the stack and wait (with a deadline) for its banner."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "starter.devstack"],
            cwd=ROOT,
            env=self.environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # Its own process group, as `make run` in a terminal: the SIGINT of stop()
            # reaches devstack only, never pytest.
            start_new_session=True,
        )
        assert self._process.stdout is not None
        self._reader = threading.Thread(
            target=self._read, args=(self._process.stdout,), daemon=True
        )
        self._reader.start()
        process = self._process

        def banner_printed() -> None:
            if process.poll() is not None:
                raise RuntimeError(
                    f"`make run` exited with code {process.returncode} before its "
                    f"banner:\n{self.output()}"
                )
            assert BANNER_END in self.output()

        try:
            eventually_sync(banner_printed, within=STARTUP_SECONDS, interval=0.2)
        except AssertionError:
            raise AssertionError(
                f"`make run` printed no banner within {STARTUP_SECONDS:.0f}s:\n{self.output()}"
            ) from None
        banner = Banner.parse(self.output())
        self._secrets = [s for s in (banner.api_key, banner.codec_token) if s]
        return banner

    def _read(self, stream: IO[str]) -> None:
        # Kept in memory only: the banner holds the run's dev key and codec token.
        for line in stream:
            with self._lock:
                self._lines.append(line)

    def output(self) -> str:
        """Everything devstack and its children printed so far, tokens redacted."""
        with self._lock:
            text = "".join(self._lines)
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return text

    def stop(self) -> int | None:
        """Ctrl-C: SIGINT, then wait for a clean stop; kill everything if it hangs.

        Returns devstack's exit code (None if it had to be killed).
        """
        process = self._process
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        # Its children run in sessions of their own: note them now, to kill them too
        # if devstack hangs.
        children = descendants(process.pid)
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            for pid in (process.pid, *children):
                kill_group(pid)
            process.wait()
            return None
        finally:
            if self._reader is not None:
                self._reader.join(timeout=10)
        return code


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
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(os.getpgid(pid), signal.SIGKILL)
