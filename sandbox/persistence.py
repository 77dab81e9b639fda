"""Optional durable provider state (``--state-file`` / ``SANDBOX_STATE_FILE``).

Only provider state is kept: sTN activations, subscription outcomes and phone links; Rebilly
orders, cancellations and reactivations; Airalo future orders. Airalo tokens (and the token
rate limiter), faults, the call log and settings start fresh on every start.

:class:`PersistState` serialises that state after every request (and :func:`create_app`'s
lifespan once more on shutdown) and rewrites the file only when the JSON differs from what
was last written. Comparing snapshots instead of marking mutating handlers also catches the
admin routes, ``/_sandbox/reset`` and the lazy status changes that reads make.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import TypeAdapter, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.airalo import AiraloState
from sandbox.rebilly import RebillyState
from sandbox.state import Sandbox
from sandbox.stn import StnState
from sandbox.subscriber import SubscribersState

logger = logging.getLogger(__name__)

FORMAT_VERSION: Literal[1] = 1


@dataclass
class PersistedState:
    """The JSON document: datetimes as ISO 8601, decimals as strings, durations as ISO 8601."""

    version: Literal[1]
    stn: StnState
    rebilly: RebillyState
    airalo: AiraloState
    #: The outcome-event subscriber endpoints (absent from files written before them).
    subscribers: SubscribersState = field(default_factory=SubscribersState)


_ADAPTER = TypeAdapter(PersistedState)


class StateFileError(RuntimeError):
    """The state file exists but can not be read or parsed."""


def encode(sandbox: Sandbox) -> bytes:
    state = PersistedState(
        version=FORMAT_VERSION,
        stn=sandbox.stn.snapshot(),
        rebilly=sandbox.rebilly.snapshot(),
        airalo=sandbox.airalo.snapshot(),
        subscribers=sandbox.subscribers.snapshot(),
    )
    return _ADAPTER.dump_json(state, indent=1)


def write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, then rename it over ``path``.

    Readers see the old file or the new one, never a partial one; on failure the temporary
    file is removed and ``path`` is untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


class StateFile:
    """One sandbox's state file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._written: bytes | None = None

    def load(self, sandbox: Sandbox) -> bool:
        """Restore the provider state from the file; ``False`` when there is no file yet."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StateFileError(f"cannot read sandbox state file {self.path}: {exc}") from exc
        try:
            state = _ADAPTER.validate_json(raw)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"]) or "document"
            raise StateFileError(
                f"sandbox state file {self.path} is corrupt or of another format version "
                f"({where}: {first['msg']}); repair or delete it"
            ) from exc
        sandbox.stn.restore(state.stn)
        sandbox.rebilly.restore(state.rebilly)
        sandbox.airalo.restore(state.airalo)
        sandbox.subscribers.restore(state.subscribers)
        self._written = encode(sandbox)
        return True

    def save(self, sandbox: Sandbox) -> None:
        """Write the state if it changed since the last write; failures are logged, not raised.

        A failed write is retried after the next request.
        """
        data = encode(sandbox)
        if data == self._written:
            return
        try:
            write_atomically(self.path, data)
        except OSError:
            logger.exception("could not save sandbox state to %s", self.path)
            return
        self._written = data


class PersistState:
    """ASGI middleware: save the state before a response starts, and after every request."""

    def __init__(self, app: ASGIApp, *, state_file: StateFile, sandbox: Sandbox) -> None:
        self.app = app
        self.state_file = state_file
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_after_saving(message: Message) -> None:
            # Saving first means a client that got an answer finds its change after a restart.
            if message["type"] == "http.response.start":
                self.state_file.save(self.sandbox)
            await send(message)

        try:
            await self.app(scope, receive, send_after_saving)
        finally:
            self.state_file.save(self.sandbox)
