"""Delivers webhooks from a background thread: retries, the delivery log, delivery faults.

Stores emit webhooks on the sandbox's event loop (inside request handlers or the ticker);
:meth:`Dispatcher.submit` only records and queues them, so a slow or dead receiver never
blocks a provider request. One daemon thread (started on the first message that is to be
sent) works through the queue in due order with a synchronous httpx client. Retry waits
use real time, not the sandbox clock: a :class:`~sandbox.clock.ManualClock` would never let
them pass. Everything shared between the two threads is guarded by one lock.

**[assume]** Delivery policy (the providers document none): success is any 2xx answer;
anything else (other status, connection error, timeout) is retried up to
``webhook_max_attempts`` attempts in all, waiting ``webhook_retry_delay_seconds`` before the
first retry and twice as long before each next one.
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from sandbox.clock import format_ms
from sandbox.common import SandboxContext
from sandbox.webhooks.faults import DeliveryFault, DeliveryFaultRegistry

DeliveryStatus = Literal["pending", "delivered", "failed", "dropped", "skipped"]
#: Hosts under these names (RFC 2606/6761) never receive anything: such deliveries are
#: recorded as ``skipped`` (the default opted-in Airalo URL is one of them).
RESERVED_HOSTS = frozenset({"example.com", "example.net", "example.org"})
RESERVED_SUFFIXES = (".example", ".test", ".invalid", *(f".{host}" for host in RESERVED_HOSTS))
INJECTED_FAILURE = "injected failure (not sent)"
ALL_ATTEMPTS = 1_000_000
STOP_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Message:
    """One webhook as the provider would send it."""

    provider: str
    event: str
    url: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Attempt:
    at: datetime
    status_code: int | None
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def to_json(self) -> dict[str, Any]:
        return {"at": format_ms(self.at), "statusCode": self.status_code, "error": self.error}


@dataclass
class Delivery:
    id: str
    seq: int
    message: Message
    created_at: datetime
    copy: int
    generation: int
    status: DeliveryStatus = "pending"
    attempts: list[Attempt] = field(default_factory=list)
    fault: DeliveryFault | None = None
    #: Attempts that fail without being sent (``fail`` delivery fault).
    injected_failures: int = 0
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        message = self.message
        last = self.attempts[-1] if self.attempts else None
        return {
            "id": self.id,
            "seq": self.seq,
            "provider": message.provider,
            "event": message.event,
            "url": message.url,
            "status": self.status,
            "attempts": len(self.attempts),
            "statusCode": last.status_code if last else None,
            "attemptLog": [attempt.to_json() for attempt in self.attempts],
            "copy": self.copy,
            "fault": self.fault.id if self.fault else None,
            "reason": self.reason,
            "createdAt": format_ms(self.created_at),
            "headers": _masked(message.headers),
            "body": _parsed(message.body),
        }


def _masked(headers: dict[str, str]) -> dict[str, str]:
    """Header values are logged, except credentials."""
    return {
        name: (value.split(" ", 1)[0] + " ***" if name.lower() == "authorization" else value)
        for name, value in headers.items()
    }


def _parsed(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


def undeliverable(url: str) -> str | None:
    """Why ``url`` is never sent to, or ``None`` if it is."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.scheme not in ("http", "https") or not host:
        return f"not an http(s) URL: {url!r}"
    if host in RESERVED_HOSTS or host.endswith(RESERVED_SUFFIXES):
        return f"reserved domain {host} (RFC 2606): not sent"
    return None


class Dispatcher:
    """The delivery queue, its worker thread, the delivery log and the delivery faults."""

    def __init__(self, context: SandboxContext) -> None:
        self.context = context
        self._cond = threading.Condition()
        self._log: list[Delivery] = []
        self._queue: list[tuple[float, int, Delivery]] = []
        self._faults = DeliveryFaultRegistry()
        self._seq = itertools.count(1)
        self._generation = 0
        self._thread: threading.Thread | None = None
        self._stopping = False

    # ----------------------------------------------------------------- submitting

    def submit(self, message: Message) -> list[Delivery]:
        """Record ``message`` (one delivery per copy) and queue what is to be sent."""
        with self._cond:
            fault = self._faults.take(message.provider, message.event)
            mode = fault.spec.mode if fault else None
            copies = fault.spec.copies if fault and mode == "duplicate" else 1
            delay = fault.spec.delay_seconds if fault and mode == "delay" else 0.0
            deliveries = [self._record(message, copy, fault) for copy in range(1, copies + 1)]
            for delivery in deliveries:
                delivery.reason = undeliverable(message.url)
                if delivery.reason is not None:
                    delivery.status = "skipped"
                elif mode == "drop":
                    delivery.status, delivery.reason = "dropped", "dropped by a delivery fault"
                else:
                    if fault is not None and mode == "fail":
                        delivery.injected_failures = fault.spec.fail_attempts or ALL_ATTEMPTS
                    self._schedule(delivery, delay)
            return deliveries

    def _record(self, message: Message, copy: int, fault: DeliveryFault | None) -> Delivery:
        seq = next(self._seq)
        delivery = Delivery(
            id=f"wh-{seq:06d}",
            seq=seq,
            message=message,
            created_at=self.context.now(),
            copy=copy,
            generation=self._generation,
            fault=fault,
        )
        self._log.append(delivery)
        return delivery

    def _schedule(self, delivery: Delivery, delay: float) -> None:
        """Queue ``delivery`` ``delay`` seconds from now; the caller holds the lock."""
        heapq.heappush(self._queue, (time.monotonic() + delay, delivery.seq, delivery))
        if self._thread is None or not self._thread.is_alive():
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
            self._thread.start()
        self._cond.notify_all()

    # ----------------------------------------------------------------- the worker

    def _next(self) -> Delivery | None:
        """Wait for the next due delivery; ``None`` when stopping."""
        with self._cond:
            while not self._stopping:
                if self._queue:
                    due, _seq, delivery = self._queue[0]
                    wait = due - time.monotonic()
                    if wait <= 0:
                        heapq.heappop(self._queue)
                        if delivery.generation == self._generation:
                            return delivery
                        continue
                    self._cond.wait(wait)
                else:
                    self._cond.wait()
            return None

    def _run(self) -> None:
        with httpx.Client(trust_env=False, follow_redirects=False) as client:
            while (delivery := self._next()) is not None:
                attempt = self._attempt(client, delivery)
                self._settle(delivery, attempt)

    def _attempt(self, client: httpx.Client, delivery: Delivery) -> Attempt:
        if len(delivery.attempts) < delivery.injected_failures:
            return Attempt(self.context.now(), None, INJECTED_FAILURE)
        message = delivery.message
        timeout = self.context.settings.webhook_timeout_seconds
        try:
            response = client.post(
                message.url, content=message.body, headers=message.headers, timeout=timeout
            )
        except httpx.HTTPError as exc:
            return Attempt(self.context.now(), None, f"{type(exc).__name__}: {exc}")
        return Attempt(self.context.now(), response.status_code, None)

    def _settle(self, delivery: Delivery, attempt: Attempt) -> None:
        settings = self.context.settings
        with self._cond:
            delivery.attempts.append(attempt)
            tries = len(delivery.attempts)
            if attempt.succeeded:
                delivery.status = "delivered"
            elif tries >= settings.webhook_max_attempts:
                delivery.status = "failed"
                delivery.reason = f"gave up after {tries} attempts"
            elif delivery.generation == self._generation:
                delay = settings.webhook_retry_delay_seconds * 2 ** (tries - 1)
                if self._stopping:  # closing: keep it queued for a later restart
                    heapq.heappush(self._queue, (time.monotonic() + delay, delivery.seq, delivery))
                else:
                    self._schedule(delivery, delay)

    # ----------------------------------------------------------------- admin

    def deliveries(
        self, provider: str | None = None, event: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        with self._cond:
            return [
                delivery.to_json()
                for delivery in self._log
                if (provider is None or delivery.message.provider == provider)
                and (event is None or delivery.message.event == event)
                and (status is None or delivery.status == status)
            ]

    def add_fault(self, spec: Any) -> DeliveryFault:
        with self._cond:
            return self._faults.add(spec)

    def faults(self) -> list[dict[str, Any]]:
        with self._cond:
            return [fault.to_json() for fault in self._faults.all()]

    def clear_faults(self) -> None:
        with self._cond:
            self._faults.clear()

    def clear(self) -> None:
        """Forget the log and everything not yet delivered (an attempt in flight finishes,
        but is neither logged nor retried)."""
        with self._cond:
            self._generation += 1
            self._log.clear()
            self._queue.clear()
            self._cond.notify_all()

    def reset(self) -> None:
        self.clear()
        self.clear_faults()

    def close(self) -> None:
        """Stop the worker thread (pending deliveries stay queued; a later submit restarts it)."""
        with self._cond:
            self._stopping = True
            thread, self._thread = self._thread, None
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(STOP_TIMEOUT_SECONDS)
