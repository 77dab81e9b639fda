"""A tiny webhook receiver for tests: records every request, answers scripted statuses."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    #: Lower-case header names.
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """``http.server`` on 127.0.0.1 in a daemon thread. Answers the scripted ``statuses`` in
    order (one per request), then ``default_status``."""

    def __init__(self, statuses: Iterable[int] = (), default_status: int = 200) -> None:
        self._lock = threading.Lock()
        # Notified on every request received: wait_for wakes then, not on a timer.
        self._arrived = threading.Condition(self._lock)
        self._received: list[Received] = []
        self._script = list(statuses)
        self.default_status = default_status
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def script(self, *statuses: int, default_status: int | None = None) -> None:
        """Answer ``statuses`` to the next requests (then the default)."""
        with self._lock:
            self._script = list(statuses)
            if default_status is not None:
                self.default_status = default_status

    def _next_status(self) -> int:
        with self._lock:
            return self._script.pop(0) if self._script else self.default_status

    def _record(self, item: Received) -> None:
        with self._arrived:
            self._received.append(item)
            self._arrived.notify_all()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver._record(Received("POST", self.path, headers, body))
                self.send_response(receiver._next_status())
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        return Handler

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [item for item in self._received if path is None or item.path == path]

    def wait_for(
        self, count: int, path: str | None = None, timeout: float = 10.0
    ) -> list[Received]:
        """Wait until at least ``count`` requests (to ``path``) arrived; returns them all."""

        def arrived() -> list[Received]:
            return [item for item in self._received if path is None or item.path == path]

        with self._arrived:
            if not self._arrived.wait_for(lambda: len(arrived()) >= count, timeout):
                raise TimeoutError(f"{len(arrived())} of {count} webhooks arrived in {timeout} s")
            return arrived()

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
