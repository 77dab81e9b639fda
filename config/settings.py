"""Runtime configuration from the environment (pydantic-settings).

Secrets are ``SecretStr``: they print as ``**********`` and are read only where
an HTTP header is built, inside activities. They never reach workflow input,
history, search attributes or logs.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SANDBOX_URL = "http://127.0.0.1:8099"


class StnSettings(BaseSettings):
    """sTN Partner API. Env: ``STN_BASE_URL``, ``STN_API_KEY``, ``STN_TIMEOUT_SECONDS``."""

    model_config = SettingsConfigDict(env_prefix="STN_", extra="ignore")

    base_url: str = f"{DEFAULT_SANDBOX_URL}/stn"
    api_key: SecretStr = SecretStr("sandbox-stn-key")
    timeout_seconds: float = 15.0


class OrchestratorSettings(BaseSettings):
    """Orchestrator-wide settings. Env prefix ``CANCEL_``."""

    model_config = SettingsConfigDict(env_prefix="CANCEL_", extra="ignore")

    task_queue: str = "cancellations"
    # Keys the hash that turns a phone number into a workflow id. Set your own
    # in production; every process that starts sagas must use the same one.
    workflow_id_key: SecretStr = SecretStr("dev-only-workflow-id-key")


class RebillySettings(BaseSettings):
    """Rebilly. Env: ``REBILLY_BASE_URL`` (organization-scoped, e.g.
    ``https://api-sandbox.rebilly.com/organizations/<org>``), ``REBILLY_API_KEY``,
    ``REBILLY_TIMEOUT_SECONDS``."""

    model_config = SettingsConfigDict(env_prefix="REBILLY_", extra="ignore")

    base_url: str = f"{DEFAULT_SANDBOX_URL}/rebilly/organizations/org-sandbox"
    api_key: SecretStr = SecretStr("sk_sandbox_rebilly")
    timeout_seconds: float = 15.0


class AiraloSettings(BaseSettings):
    """Airalo Partner API. Env: ``AIRALO_BASE_URL``, ``AIRALO_CLIENT_ID``,
    ``AIRALO_CLIENT_SECRET``, ``AIRALO_TIMEOUT_SECONDS``, ``AIRALO_WEBHOOK_URL``.

    ``AIRALO_BASE_URL`` is the documented base, ``https://partners-api.airalo.com/v2/``;
    a URL without the version (the sandbox's ``http://host:8099/airalo``) works too.
    ``AIRALO_WEBHOOK_URL`` is sent as ``webhook_url`` when a future order is
    (re-)created; unset, Airalo delivers to the partner's opted-in ``async_orders``
    URL, and refuses the order if there is none.
    """

    model_config = SettingsConfigDict(env_prefix="AIRALO_", extra="ignore")

    base_url: str = f"{DEFAULT_SANDBOX_URL}/airalo"
    client_id: str = "sandbox-airalo-client"
    client_secret: SecretStr = SecretStr("sandbox-airalo-secret")
    timeout_seconds: float = 15.0
    webhook_url: str | None = None

    @property
    def api_root(self) -> str:
        """``base_url`` without a trailing ``/v2``: the client's paths carry the version
        (``/v2/token``), so the documented base must not double it."""
        root = self.base_url.rstrip("/")
        return root.removesuffix("/v2")


class ApiScope(StrEnum):
    """What an HTTP API key may do."""

    EVENTS_WRITE = "events:write"
    SAGAS_WRITE = "sagas:write"
    SAGAS_READ = "sagas:read"


class ApiKey(BaseModel):
    """One caller of the HTTP API: a name (for logs), its bearer token, its scopes."""

    name: str = Field(min_length=1)
    token: SecretStr = Field(min_length=16)
    scopes: frozenset[ApiScope] = frozenset()


class ApiSettings(BaseSettings):
    """The HTTP API (``python -m starter.api``). Env prefix ``CANCEL_API_``.

    ``CANCEL_API_KEYS`` is JSON: ``[{"name": "crm", "token": "...", "scopes":
    ["events:write", "sagas:write", "sagas:read"]}]``. Without keys every call
    but ``/healthz``, ``/readyz`` and the OpenAPI document is refused (401).
    """

    model_config = SettingsConfigDict(env_prefix="CANCEL_API_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    keys: list[ApiKey] = Field(default_factory=list)
    # Larger request bodies are refused with 413 before they are parsed.
    max_body_bytes: int = Field(default=64 * 1024, ge=1)
    # How long a request waits for Temporal (connecting, /readyz) before answering 503.
    temporal_timeout_seconds: float = Field(default=3.0, gt=0)
    # Sent as Retry-After with a 503.
    retry_after_seconds: int = Field(default=5, ge=1)
    # Provider webhooks (/v1/webhooks/...). Airalo signs with the partner's client
    # secret (the worker's AIRALO_CLIENT_SECRET); Rebilly sends HTTP Basic auth.
    # Unset: that provider's webhooks are answered 503 (nothing can be verified).
    airalo_webhook_secret: SecretStr | None = None
    rebilly_webhook_username: str | None = None
    rebilly_webhook_password: SecretStr | None = None
