"""Helpers for tests elsewhere: a real sandbox server on a free port and a sync admin client."""

from __future__ import annotations

import socket
import threading
import time
from datetime import datetime
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote

import httpx
import uvicorn
from fastapi import FastAPI

from sandbox.app import create_app
from sandbox.clock import Clock, as_utc
from sandbox.settings import SandboxSettings
from sandbox.state import Sandbox, get_sandbox

STARTUP_TIMEOUT_SECONDS = 10.0
WEBHOOK_WAIT_SECONDS = 10.0
SHUTDOWN_TIMEOUT_SECONDS = 10.0
POLL_INTERVAL_SECONDS = 0.01
AIRALO_DATE_FORMAT = "%Y-%m-%d %H:%M"


class SandboxServer:
    """``create_app(settings)`` served by uvicorn in a background thread on 127.0.0.1.

    Use it as a context manager (``with SandboxServer() as server: ...``) and point the
    provider clients at ``server.stn_url``, ``server.rebilly_url`` and ``server.airalo_url``.
    """

    def __init__(
        self,
        settings: SandboxSettings | None = None,
        *,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.settings = settings or SandboxSettings()
        self.app: FastAPI = create_app(self.settings, clock=clock)
        self.host = host
        self._requested_port = port
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def sandbox(self) -> Sandbox:
        """Direct access to the in-memory state (e.g. to swap the clock)."""
        return get_sandbox(self.app)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def stn_url(self) -> str:
        return self.base_url + "/stn"

    @property
    def rebilly_url(self) -> str:
        organization = self.sandbox.context.settings.rebilly_organization_id
        return f"{self.base_url}/rebilly/organizations/{organization}"

    @property
    def airalo_url(self) -> str:
        return self.base_url + "/airalo"

    def admin(self) -> SandboxAdmin:
        return SandboxAdmin(self.base_url)

    def start(self) -> SandboxServer:
        """Start serving; returns once the port accepts connections."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        self.port = sock.getsockname()[1]
        # The lifespan runs the webhook ticker and stops the delivery thread on shutdown.
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="sandbox-server", daemon=True
        )
        self._thread.start()
        self._wait_until_serving(sock)
        return self

    def _wait_until_serving(self, sock: socket.socket) -> None:
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive():
                sock.close()
                raise RuntimeError("sandbox server exited during startup")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("sandbox server did not start in time")
            time.sleep(POLL_INTERVAL_SECONDS)
        with socket.create_connection((self.host, self.port), timeout=STARTUP_TIMEOUT_SECONDS):
            pass

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for the thread (idempotent)."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(SHUTDOWN_TIMEOUT_SECONDS)
        if self._thread.is_alive():
            raise TimeoutError("sandbox server did not stop in time")
        self._server = None
        self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _airalo_date(value: datetime | str) -> str:
    """``YYYY-MM-DD HH:MM`` in UTC (naive datetimes are taken as UTC)."""
    return as_utc(value).strftime(AIRALO_DATE_FORMAT) if isinstance(value, datetime) else value


def _iso(value: datetime | str) -> str:
    return as_utc(value).isoformat() if isinstance(value, datetime) else value


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


class _Unset:
    """Marks a keyword argument that was not given (``None`` is a meaningful value)."""


UNSET: Final = _Unset()


class SandboxAdmin:
    """Thin synchronous client for the ``/_sandbox`` admin endpoints."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self._base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self._base_url + "/_sandbox", timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SandboxAdmin:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._client.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    # ------------------------------------------------------------------ generic

    def calls(
        self, provider: str | None = None, method: str | None = None, path: str | None = None
    ) -> list[dict[str, Any]]:
        params = _without_none({"provider": provider, "method": method, "path": path})
        calls: list[dict[str, Any]] = self._request("GET", "/calls", params=params)["calls"]
        return calls

    def add_fault(self, **spec: Any) -> str:
        """``add_fault(provider="stn", mode="error", status=503, count=1)``; snake or camel."""
        fault_id: str = self._request("POST", "/faults", json=spec)["id"]
        return fault_id

    def faults(self) -> list[dict[str, Any]]:
        faults: list[dict[str, Any]] = self._request("GET", "/faults")["faults"]
        return faults

    def clear_faults(self) -> None:
        self._request("DELETE", "/faults")

    def reset(self) -> None:
        self._request("POST", "/reset")

    def configure(self, **settings: Any) -> dict[str, Any]:
        """``configure(stn_processing_delay_seconds=0.2)``; returns the public settings."""
        config: dict[str, Any] = self._request("POST", "/config", json=settings)
        return config

    # ------------------------------------------------------------------ sTN

    def stn_set_outcome(
        self,
        subscription_id: str,
        outcome: str | None = None,
        message: str | None = None,
        *,
        cancel_outcome: str | None = None,
        cancel_message: str | None = None,
    ) -> dict[str, Any]:
        """How the subscription's terminations (``outcome``) and cancellations of them
        (``cancel_outcome``) settle: ``"DONE"`` or ``"ERROR"`` with ``message``."""
        body = _without_none(
            {
                "outcome": outcome,
                "message": message,
                "cancelOutcome": cancel_outcome,
                "cancelMessage": cancel_message,
            }
        )
        result: dict[str, Any] = self._request(
            "POST", f"/stn/subscriptions/{quote(subscription_id, safe='')}", json=body
        )
        return result

    # ------------------------------------------------------------------ Rebilly

    def rebilly_seed_order(
        self,
        order_id: str,
        *,
        next_renewal_time: datetime | str | None = None,
        amount: float | str | None = None,
        currency: str | None = None,
    ) -> dict[str, Any]:
        """Create or update an order (defaults: renews in 30 days, 30.00 EUR)."""
        body = _without_none(
            {
                "id": order_id,
                "nextRenewalTime": _iso(next_renewal_time) if next_renewal_time else None,
                "amount": amount,
                "currency": currency,
            }
        )
        order: dict[str, Any] = self._request("POST", "/rebilly/orders", json=body)
        return order

    def rebilly_get_order(self, order_id: str) -> dict[str, Any]:
        """The order plus ``churned`` and the statuses of its cancellations."""
        order: dict[str, Any] = self._request("GET", f"/rebilly/orders/{quote(order_id, safe='')}")
        return order

    # ------------------------------------------------------------------ Airalo

    def airalo_seed_future_order(
        self,
        package_id: str,
        due_date: datetime | str,
        *,
        request_id: str | None = None,
        quantity: int = 1,
        description: str | None = None,
        status: str | None = None,
        webhook_url: str | None = None,
    ) -> dict[str, Any]:
        """Seed a future order with any due date (no two-day rule) and status; it fires to
        ``webhook_url`` if given, else to the opted-in URL."""
        body = _without_none(
            {
                "request_id": request_id,
                "package_id": package_id,
                "quantity": quantity,
                "due_date": _airalo_date(due_date),
                "description": description,
                "status": status,
                "webhook_url": webhook_url,
            }
        )
        order: dict[str, Any] = self._request("POST", "/airalo/future-orders", json=body)
        return order

    def airalo_set_status(self, request_id: str, status: str) -> dict[str, Any]:
        """Move an order to ``pending``/``failed``/``retry``/``processed``/``cancelled``."""
        path = f"/airalo/future-orders/{quote(request_id, safe='')}/status"
        order: dict[str, Any] = self._request("POST", path, json={"status": status})
        return order

    def airalo_get_future_order(self, request_id: str) -> dict[str, Any]:
        """Internal state: ``status``, ``options``, ``cancelledAt``, ``processedAt``…"""
        path = f"/airalo/future-orders/{quote(request_id, safe='')}"
        order: dict[str, Any] = self._request("GET", path)
        return order

    def airalo_revoke_tokens(self) -> int:
        """Invalidate all issued access tokens; returns how many there were."""
        revoked: int = self._request("POST", "/airalo/revoke-tokens")["revoked"]
        return revoked

    def airalo_fire(self, request_id: str) -> dict[str, Any]:
        """Fire an open (pending/failed/retry) future order now and send its webhook."""
        path = f"/airalo/future-orders/{quote(request_id, safe='')}/fire"
        order: dict[str, Any] = self._request("POST", path)
        return order

    # ------------------------------------------------------------------ webhooks

    def tick(self) -> str:
        """Fire due Airalo orders and churn due Rebilly orders now; returns the sandbox time."""
        now: str = self._request("POST", "/tick")["now"]
        return now

    def set_webhook_targets(
        self,
        *,
        airalo_url: str | _Unset | None = UNSET,
        rebilly_url: str | _Unset | None = UNSET,
        rebilly_username: str | _Unset | None = UNSET,
        rebilly_password: str | _Unset | None = UNSET,
    ) -> dict[str, Any]:
        """Point the webhooks somewhere (``None`` = no delivery / no Basic auth); arguments
        not given are left as they are. Goes through :meth:`configure`."""
        changes = {
            "airalo_opted_in_webhook_url": airalo_url,
            "rebilly_webhook_url": rebilly_url,
            "rebilly_webhook_username": rebilly_username,
            "rebilly_webhook_password": rebilly_password,
        }
        given = {key: value for key, value in changes.items() if not isinstance(value, _Unset)}
        return self.configure(**given)

    def webhook_deliveries(
        self, provider: str | None = None, event: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        """The delivery log (one record per copy): ``status``, ``attempts``, ``body``..."""
        params = _without_none({"provider": provider, "event": event, "status": status})
        deliveries: list[dict[str, Any]] = self._request("GET", "/webhooks", params=params)[
            "deliveries"
        ]
        return deliveries

    def wait_for_webhooks(
        self,
        count: int = 1,
        *,
        provider: str | None = None,
        event: str | None = None,
        timeout: float = WEBHOOK_WAIT_SECONDS,
    ) -> list[dict[str, Any]]:
        """Poll the delivery log until at least ``count`` matching deliveries exist and none
        of them is still ``pending``; returns them. :class:`TimeoutError` otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            deliveries = self.webhook_deliveries(provider=provider, event=event)
            settled = all(delivery["status"] != "pending" for delivery in deliveries)
            if len(deliveries) >= count and settled:
                return deliveries
            if time.monotonic() > deadline:
                raise TimeoutError(f"webhooks not settled in {timeout} s: {deliveries}")
            time.sleep(POLL_INTERVAL_SECONDS)

    def clear_webhooks(self) -> None:
        """Forget the delivery log and any delivery not yet made."""
        self._request("DELETE", "/webhooks")

    def add_webhook_fault(self, **spec: Any) -> str:
        """``add_webhook_fault(mode="duplicate", provider="airalo", count=1)``; modes
        ``duplicate`` (``copies``), ``fail`` (``fail_attempts``), ``drop``, ``delay``
        (``delay_seconds``)."""
        fault_id: str = self._request("POST", "/webhooks/faults", json=spec)["id"]
        return fault_id

    def webhook_faults(self) -> list[dict[str, Any]]:
        faults: list[dict[str, Any]] = self._request("GET", "/webhooks/faults")["faults"]
        return faults

    def subscriber_url(self, name: str) -> str:
        """Where a subscription points to reach the endpoint ``name``."""
        return f"{self._base_url}/subscriber/{quote(name, safe='')}"

    def configure_subscriber(self, name: str, **config: Any) -> dict[str, Any]:
        """``secrets``, ``failStatus``, ``failCount``, ``failForSeconds``, ``gone``,
        ``delaySeconds``, ``retryAfterSeconds`` (``sandbox/subscriber.py``)."""
        answer: dict[str, Any] = self._request(
            "PUT", f"/subscribers/{quote(name, safe='')}", json=config
        )
        return answer

    def subscriber_received(self, name: str) -> dict[str, Any]:
        """``attempts`` (every request) and ``events`` (deduped by webhook-id)."""
        answer: dict[str, Any] = self._request("GET", f"/subscribers/{quote(name, safe='')}")
        return answer

    def clear_webhook_faults(self) -> None:
        self._request("DELETE", "/webhooks/faults")
