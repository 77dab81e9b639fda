"""The environment of each product process a stack starts: one function, :func:`environment`.

A stack describes once where its processes listen and the per-run secrets they share
(:class:`Wiring`); each process's environment is the caller's (``os.environ``) with
that wiring over it, for its :class:`Role`:

- every role: the Temporal address, namespace and task queue, the three providers'
  base URLs on the sandbox, and the Airalo webhook URL of re-created orders (the
  stack's API, when it serves one);
- the worker and the API: their metrics address, each provider call's timeout, when
  given; the worker makes its deployment version current once it polls;
- the API: where it listens, the stack's dev key (every scope), the webhook secrets
  the sandbox signs with;
- the sandbox: its webhooks to the API, with the stack's Rebilly Basic password;
- the codec server: where it listens, the Web UI's origins, the stack's token.

What the stack wires always wins over the caller's environment (the two ends of a
webhook must agree); the log format is a default the caller's environment may set.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from config.deployment import OnStart
from config.settings import ApiScope
from sandbox.settings import SandboxSettings

HOST = "127.0.0.1"
REBILLY_WEBHOOK_USER = "rebilly"
PROVIDERS = ("STN", "REBILLY", "AIRALO")


def new_secret() -> str:
    """A per-run API key, codec token or webhook password."""
    return secrets.token_urlsafe(24)


def dev_api_key(token: str) -> dict[str, object]:
    """A stack's local dev key: every scope, valid until the stack stops."""
    return {"name": "devstack", "token": token, "scopes": [s.value for s in ApiScope]}


class Role(StrEnum):
    """What a process is to the stack, which decides what its environment adds."""

    WORKER = "worker"
    API = "HTTP API"
    SANDBOX = "sandbox"
    CODEC_SERVER = "codec server"
    #: Anything that only talks to Temporal and the providers: cancelctl, a bare worker.
    CLIENT = "client"


@dataclass(frozen=True)
class Wiring:
    """Where one stack's processes listen (all on 127.0.0.1) and the secrets they share."""

    temporal_address: str
    sandbox_url: str
    namespace: str = "default"
    #: ``None``: the caller's ``CANCEL_TASK_QUEUE``, else the product's default.
    task_queue: str | None = None
    rebilly_organization: str = field(
        default_factory=lambda: SandboxSettings().rebilly_organization_id
    )
    #: The stack's HTTP API; ``None``: none, and the sandbox sends no webhooks.
    api_port: int | None = None
    #: The dev key the API accepts; ``None``: ``CANCEL_API_KEYS`` from the caller's env.
    api_token: str | None = None
    codec_port: int | None = None
    #: The codec server's token; ``None``: ``CANCEL_CODEC_SERVER_TOKENS`` from the caller's.
    codec_token: str | None = None
    #: The Web UI whose origins the codec server allows.
    ui_port: int | None = None
    #: Basic password of the sandbox's Rebilly webhooks to the API.
    webhook_password: str = field(default_factory=new_secret, repr=False)
    #: ``CANCEL_LOG_FORMAT`` unless the caller's environment sets it.
    log_format: str | None = None

    @property
    def api_url(self) -> str | None:
        return None if self.api_port is None else f"http://{HOST}:{self.api_port}"

    @property
    def codec_endpoint(self) -> str | None:
        return None if self.codec_port is None else f"http://{HOST}:{self.codec_port}"

    @property
    def ui_origins(self) -> list[str]:
        """The Web UI's origins: its 127.0.0.1 URL and the same on localhost."""
        if self.ui_port is None:
            return []
        return [f"http://{HOST}:{self.ui_port}", f"http://localhost:{self.ui_port}"]


def environment(
    wiring: Wiring,
    role: Role,
    *,
    base: Mapping[str, str] | None = None,
    metrics_address: str | None = None,
    provider_timeout_seconds: float | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of one process of the stack ``wiring`` describes.

    ``base``: the caller's environment (default ``os.environ``). ``metrics_address``:
    where a worker or the API serves Prometheus metrics (``""``: none; ``None``: the
    base's or the default). ``extra``: set last (a worker's ``CANCEL_WORKER_*`` tuning,
    a sandbox's ``SANDBOX_*`` settings).
    """
    env = dict(os.environ if base is None else base)
    if wiring.log_format is not None:
        env.setdefault("CANCEL_LOG_FORMAT", wiring.log_format)
    sandbox = wiring.sandbox_url.rstrip("/")
    env |= {
        "TEMPORAL_ADDRESS": wiring.temporal_address,
        "TEMPORAL_NAMESPACE": wiring.namespace,
        "STN_BASE_URL": f"{sandbox}/stn",
        "REBILLY_BASE_URL": f"{sandbox}/rebilly/organizations/{wiring.rebilly_organization}",
        "AIRALO_BASE_URL": f"{sandbox}/airalo",
    }
    if wiring.task_queue is not None:
        env["CANCEL_TASK_QUEUE"] = wiring.task_queue
    hooks = None if wiring.api_url is None else f"{wiring.api_url}/v1/webhooks"
    if hooks is not None:
        # Re-created future orders name the API as their webhook destination.
        env["AIRALO_WEBHOOK_URL"] = f"{hooks}/airalo"
    if provider_timeout_seconds is not None:
        env |= {f"{p}_TIMEOUT_SECONDS": str(provider_timeout_seconds) for p in PROVIDERS}
    if metrics_address is not None:
        variable = {Role.WORKER: "WORKER", Role.API: "API"}.get(role)
        if variable is None:
            raise ValueError(f"a {role} serves no metrics")
        env[f"CANCEL_METRICS_{variable}_ADDRESS"] = metrics_address
    if role is Role.WORKER:
        # A local stack runs one version at a time: the one it just started is made
        # current (config/deployment.py), unless the caller's environment says otherwise.
        env.setdefault("CANCEL_DEPLOYMENT_ON_START", OnStart.CURRENT.value)
    if role is Role.API:
        if wiring.api_port is None:
            raise ValueError("this stack serves no HTTP API (its wiring has no api_port)")
        env |= {
            "CANCEL_API_HOST": HOST,
            "CANCEL_API_PORT": str(wiring.api_port),
            # The sandbox signs Airalo's webhooks with its client secret, Rebilly's with
            # the stack's Basic password.
            "CANCEL_API_AIRALO_WEBHOOK_SECRET": SandboxSettings().airalo_client_secret,
            "CANCEL_API_REBILLY_WEBHOOK_USERNAME": REBILLY_WEBHOOK_USER,
            "CANCEL_API_REBILLY_WEBHOOK_PASSWORD": wiring.webhook_password,
        }
        if wiring.api_token is not None:
            env["CANCEL_API_KEYS"] = json.dumps([dev_api_key(wiring.api_token)])
    elif role is Role.SANDBOX and hooks is not None:
        env |= {
            "SANDBOX_AIRALO_OPTED_IN_WEBHOOK_URL": f"{hooks}/airalo",
            "SANDBOX_REBILLY_WEBHOOK_URL": f"{hooks}/rebilly",
            "SANDBOX_REBILLY_WEBHOOK_USERNAME": REBILLY_WEBHOOK_USER,
            "SANDBOX_REBILLY_WEBHOOK_PASSWORD": wiring.webhook_password,
        }
    elif role is Role.CODEC_SERVER:
        if wiring.codec_port is None:
            raise ValueError("this stack runs no codec server (its wiring has no codec_port)")
        env |= {
            "CANCEL_CODEC_SERVER_HOST": HOST,
            "CANCEL_CODEC_SERVER_PORT": str(wiring.codec_port),
            "CANCEL_CODEC_SERVER_ALLOWED_ORIGINS": json.dumps(wiring.ui_origins),
        }
        if wiring.codec_token is not None:
            env["CANCEL_CODEC_SERVER_TOKENS"] = json.dumps([wiring.codec_token])
    return env | dict(extra or {})
