"""``make run``'s stack as a test starts it: ``python -m stacks.devstack`` in a subprocess.

The stack gets free ports and a temporary data directory, and an environment
cleaned of what the test session or the developer's shell set for other purposes
(``tests/conftest.py`` sets fixed payload keys, a shell may hold API keys or a
Temporal address), so it behaves as a plain ``make run`` in a fresh checkout: a
generated dev API key, a generated codec token, a generated dev payload key. What a
person reads off the banner (URLs, the dev key, the codec token) is parsed from it;
its output goes to ``make-run.log`` in the stack's data directory.

Stopping is what Ctrl-C does: SIGINT to devstack, which stops its children in order;
only if that hangs past the deadline are devstack's process group and every
process it started killed (:meth:`stacks.service.Service.kill`).
"""

from __future__ import annotations

import os
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from stacks.ports import free_port
from stacks.service import Service, StartupFailed

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
    """Five distinct free loopback ports."""
    taken: set[int] = set()
    return StackPorts(*(free_port(taken) for _ in range(5)))


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
        self._secrets: list[str] = []
        self.service = Service(
            "`make run`",
            [sys.executable, "-m", "stacks.devstack"],
            self.environment(),
            data_dir / "make-run.log",
            ready_line=BANNER_END,
            # Ctrl-C, as the terminal sends it.
            graceful=signal.SIGINT,
            startup_seconds=STARTUP_SECONDS,
            stop_seconds=STOP_SECONDS,
        )

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
        try:
            self.service.start()
        except StartupFailed as failed:
            raise AssertionError(f"{failed}\n{self.output()}") from None
        banner = Banner.parse(self.output())
        self._secrets = [s for s in (banner.api_key, banner.codec_token) if s]
        return banner

    def output(self) -> str:
        """Everything devstack and its children printed so far, tokens redacted."""
        text = self.service.output()
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return text

    def stop(self) -> int | None:
        """Ctrl-C: SIGINT, then wait for a clean stop; kill everything if it hangs.

        Returns devstack's exit code (None if it had to be killed).
        """
        return self.service.stop()
