"""Runtime configuration from the environment (pydantic-settings).

Secrets are ``SecretStr``: they print as ``**********`` and are read only where
an HTTP header is built, inside activities. They never reach workflow input,
history, search attributes or logs.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SANDBOX_URL = "http://127.0.0.1:8099"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def default_of(settings: type[BaseSettings], name: str) -> Any:
    """A setting's default, whatever this process's environment says (for documents
    that must not depend on it, like the OpenAPI document)."""
    return settings.model_fields[name].default


class StnSettings(BaseSettings):
    """sTN Partner API. Env: ``STN_BASE_URL``, ``STN_API_KEY``, ``STN_TIMEOUT_SECONDS``."""

    model_config = SettingsConfigDict(env_prefix="STN_", extra="ignore")

    base_url: str = f"{DEFAULT_SANDBOX_URL}/stn"
    api_key: SecretStr = SecretStr("sandbox-stn-key")
    timeout_seconds: float = 15.0


class Environment(StrEnum):
    """Where the process runs: production refuses development conveniences
    (e.g. a generated payload-encryption key)."""

    DEVELOPMENT = "development"
    PRODUCTION = "production"


class OrchestratorSettings(BaseSettings):
    """Orchestrator-wide settings. Env prefix ``CANCEL_``."""

    model_config = SettingsConfigDict(env_prefix="CANCEL_", extra="ignore")

    # CANCEL_ENVIRONMENT: production makes a missing codec key a start-up error.
    environment: Environment = Environment.DEVELOPMENT
    task_queue: str = "cancellations"
    # Keys the hash that turns a phone number into a workflow id. Set your own
    # in production; every process that starts sagas must use the same one.
    workflow_id_key: SecretStr = SecretStr("dev-only-workflow-id-key")
    # How long an operator request (revoke, reschedule, confirm, resolve) through the
    # API or cancelctl waits for the saga's answer; longer, and the request is answered
    # "sent, follow its status" (``starter.sagas.ask``), never left hanging.
    operator_wait_seconds: float = Field(default=5.0, gt=0, le=60)


class WorkerSettings(BaseSettings):
    """How the worker process runs its tasks (``worker.py``). Env prefix ``CANCEL_WORKER_``.

    Unset (``None``) means the Temporal SDK's own default. Measured on 2 cores in
    ``docs/performance.md`` (``make bench``); README "Sizing" says when to change them.
    """

    # An empty variable (``CANCEL_WORKER_WORKFLOW_TASK_POLLERS=`` in .env) counts as unset.
    model_config = SettingsConfigDict(
        env_prefix="CANCEL_WORKER_", extra="ignore", env_ignore_empty=True
    )

    # Workflow runs kept in memory between their tasks (sticky cache; SDK default 1000).
    # A run that was evicted is replayed from its whole history on its next task.
    max_cached_workflows: int = Field(default=1000, ge=0)
    # Workflow and activity tasks in progress at once (SDK default: 100 / 100).
    max_concurrent_workflow_tasks: int | None = Field(default=None, ge=2)
    max_concurrent_activities: int | None = Field(default=None, ge=1)
    # Concurrent long polls for workflow and activity tasks (SDK default: 5 / 5).
    workflow_task_pollers: int | None = Field(default=None, ge=2)
    activity_task_pollers: int | None = Field(default=None, ge=1)
    # Activities (provider calls) the task queue hands out per second, to
    # all workers together: enforced by the server, so it holds however many workers
    # run (set the same value on each; unset: no limit). README "Sizing".
    max_task_queue_activities_per_second: float | None = Field(default=None, gt=0)
    # The workflow sandbox re-imports every non-passthrough module a workflow uses for
    # each run it creates or replays (a fresh copy of workflows/*, its classes and
    # dataclasses): true imports workflows/ and domain/ once per process and shares
    # them. Safe because those modules hold no mutable module state and do no I/O
    # (runtime restrictions on non-deterministic calls still apply).
    share_workflow_modules: bool = True
    # Patch ids (workflows/patches.py, comma-separated) that new runs on this worker do
    # not take yet: during a rolling upgrade, until no worker of the release before is
    # left, a new run must not record a patch that an old worker would fail to replay.
    # Runs that already took a patch keep it; replay is never affected. The worker
    # checks the ids against the patches it knows at start-up (worker.py).
    hold_patches: Annotated[frozenset[str], NoDecode] = frozenset()
    # What this process polls (comma-separated): "workflows" (the sagas' task queue)
    # and provider names (each provider's lane, domain/lanes.py). Empty: everything.
    # A deployment can give a busy lane workers of its own.
    serves: Annotated[frozenset[str], NoDecode] = frozenset()

    @field_validator("hold_patches", "serves", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(part.strip() for part in value.split(",") if part.strip())
        return value


#: What a worker's ``CANCEL_WORKER_SERVES`` names for the sagas' own task queue.
SERVES_WORKFLOWS = "workflows"


class LaneLimitError(ValueError):
    """A ``CANCEL_<PROVIDER>_MAX_CALLS_PER_SECOND`` that is no limit (said by its name)."""


def lane_limit_variable(provider: str) -> str:
    """The setting of a provider lane's limit, e.g. ``CANCEL_STN_MAX_CALLS_PER_SECOND``."""
    return f"CANCEL_{provider.upper()}_MAX_CALLS_PER_SECOND"


def lane_limits(
    providers: Iterable[str], environ: Mapping[str, str] | None = None
) -> dict[str, float | None]:
    """Each provider lane's limit in calls per second (unset or empty: no limit).

    The server enforces it on the lane's task queue for all workers together
    (``domain/lanes.py``); ``cancelctl lanes set`` overrides it at run time.
    """
    environ = os.environ if environ is None else environ
    limits: dict[str, float | None] = {}
    for provider in providers:
        name = lane_limit_variable(provider)
        raw = environ.get(name, "").strip()
        if not raw:
            limits[provider] = None
            continue
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise LaneLimitError(
                f"{name}={raw!r}: must be a number of calls per second above 0 "
                "(leave it unset for no limit)"
            )
        limits[provider] = value
    return limits


class RebillySettings(BaseSettings):
    """Rebilly. Env: ``REBILLY_BASE_URL`` (organization-scoped, e.g.
    ``https://api-sandbox.rebilly.com/organizations/<org>``), ``REBILLY_API_KEY``,
    ``REBILLY_TIMEOUT_SECONDS``, ``REBILLY_RATE_LIMIT_SLOW_BELOW``,
    ``REBILLY_RATE_LIMIT_MAX_WAIT_SECONDS``.

    The last two pace writes while Rebilly's ``X-RateLimit-Remaining`` is below that
    share of ``X-RateLimit-Limit``, each request waiting at most that long
    (``activities.rate_pacing.RateLimitPacer``; 0 s turns pacing off).
    """

    model_config = SettingsConfigDict(env_prefix="REBILLY_", extra="ignore")

    base_url: str = f"{DEFAULT_SANDBOX_URL}/rebilly/organizations/org-sandbox"
    api_key: SecretStr = SecretStr("sk_sandbox_rebilly")
    timeout_seconds: float = 15.0
    rate_limit_slow_below: float = Field(default=0.1, ge=0.0, le=1.0)
    rate_limit_max_wait_seconds: float = Field(default=2.0, ge=0.0, le=30.0)


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
    #: Manage outcome subscriptions (add, list, remove, rotate, deliveries, replay).
    SUBSCRIPTIONS_WRITE = "subscriptions:write"


class WebhookSettings(BaseSettings):
    """Delivering outcome events to subscribers (the worker's webhooks lane).
    Env prefix ``CANCEL_WEBHOOK_``.

    ``TIMEOUT_SECONDS`` bounds one delivery attempt's HTTP exchange (a slow subscriber
    holds its delivery, never a worker slot for long); ``INLINE_TIMEOUT_SECONDS`` bounds
    the first attempt a publish makes itself, in the saga's workflow task (0: none, every
    event goes to its subscriber's outbox; ``activities/outcomes.py``);
    ``SUBSCRIPTION_CACHE_SECONDS`` is
    how long a worker process reuses what it read of the subscription store (a new
    subscription receives events from at most that long after it was added).
    """

    model_config = SettingsConfigDict(env_prefix="CANCEL_WEBHOOK_", extra="ignore")

    timeout_seconds: float = Field(default=10.0, gt=0, le=25)
    inline_timeout_seconds: float = Field(default=1.0, ge=0, le=5)
    subscription_cache_seconds: float = Field(default=5.0, ge=0, le=300)


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


# -- payload encryption (config/codec.py) and the codec server (starter/codec_server) ---------

AES_256_KEY_BYTES = 32
# Key ids travel in every payload's metadata and in error messages: short, printable.
_KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
KEY_HINT = (
    "generate one with: python -c "
    "'import base64, os; print(base64.b64encode(os.urandom(32)).decode())'"
)


class CodecSettings(BaseSettings):
    """Payload encryption keys. Env prefix ``CANCEL_CODEC_``.

    ``CANCEL_CODEC_KEYS`` is JSON, key id -> base64 of 32 random bytes:
    ``{"2026-11": "base64...", "2026-05": "base64..."}``. New payloads are encrypted
    with ``CANCEL_CODEC_CURRENT_KEY_ID`` (optional when there is exactly one key);
    every listed key still decrypts, so old keys stay listed until no open run or
    kept history needs them (docs/security.md, "Rotating keys").

    No key configured: production (``CANCEL_ENVIRONMENT=production``) refuses to
    start; development generates one local key into ``CANCEL_CODEC_DEV_KEY_FILE``
    (default ``<project>/.data/dev-codec-key.json``), shared by every process of this
    checkout. Errors name the key id, never the key (``hide_input_in_errors``).
    """

    # An empty variable (``CANCEL_CODEC_CURRENT_KEY_ID=`` in a .env file) counts as unset.
    model_config = SettingsConfigDict(
        env_prefix="CANCEL_CODEC_", extra="ignore", hide_input_in_errors=True, env_ignore_empty=True
    )

    keys: dict[str, SecretStr] = Field(default_factory=dict)
    current_key_id: str | None = None
    dev_key_file: Path = PROJECT_ROOT / ".data" / "dev-codec-key.json"

    @field_validator("keys")
    @classmethod
    def _keys_are_aes_256(cls, keys: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for key_id, key in keys.items():
            if not _KEY_ID.match(key_id):
                raise ValueError(
                    f"key id {key_id!r} must be 1-64 characters of letters, digits and ._:-"
                )
            if len(decode_key(key_id, key)) != AES_256_KEY_BYTES:
                raise ValueError(
                    f"key {key_id!r} must be the base64 of exactly {AES_256_KEY_BYTES} bytes; "
                    + KEY_HINT
                )
        return keys

    @model_validator(mode="after")
    def _current_key_is_configured(self) -> CodecSettings:
        if self.current_key_id is None:
            if len(self.keys) > 1:
                raise ValueError(
                    "CANCEL_CODEC_CURRENT_KEY_ID must name the key new payloads are encrypted "
                    f"with, one of {sorted(self.keys)}"
                )
            return self
        if not self.keys:
            raise ValueError(
                f"CANCEL_CODEC_CURRENT_KEY_ID is {self.current_key_id!r} but CANCEL_CODEC_KEYS "
                "is empty"
            )
        if self.current_key_id not in self.keys:
            raise ValueError(
                f"CANCEL_CODEC_CURRENT_KEY_ID {self.current_key_id!r} is not one of "
                f"CANCEL_CODEC_KEYS {sorted(self.keys)}"
            )
        return self

    def key_bytes(self) -> dict[str, bytes]:
        """The configured keys, decoded (validated to 32 bytes each)."""
        return {key_id: decode_key(key_id, key) for key_id, key in self.keys.items()}

    def current(self) -> str | None:
        """The key id new payloads use: the named one, or the only one; None without keys."""
        if self.current_key_id is not None:
            return self.current_key_id
        return next(iter(self.keys), None)


def decode_key(key_id: str, key: SecretStr) -> bytes:
    """Strict base64 of one key; the error names the id and never the value."""
    try:
        return base64.b64decode(key.get_secret_value(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"key {key_id!r} is not valid base64; {KEY_HINT}") from None


class CodecServerSettings(BaseSettings):
    """The codec server (``python -m starter.codec_server``). Env prefix ``CANCEL_CODEC_SERVER_``.

    ``CANCEL_CODEC_SERVER_TOKENS`` is a JSON list of bearer tokens (at least 16
    characters each), compared in constant time, never logged. The Web UI cannot
    send a bearer token without a login of its own, so an operator presents a token
    once at ``/login`` and the server answers with a session cookie (HMAC keyed by
    that token, ``session_hours`` long) that the UI sends with "Include
    cross-origin credentials" (docs/security.md). ``ALLOWED_ORIGINS`` lists the Web
    UI origins allowed to call it from a browser (CORS); every other origin gets
    no CORS headers. ``SESSION_COOKIE_SECURE`` marks the cookie ``Secure`` (set it
    when the server is behind HTTPS).
    """

    model_config = SettingsConfigDict(
        env_prefix="CANCEL_CODEC_SERVER_", extra="ignore", hide_input_in_errors=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8089, ge=1, le=65535)
    allowed_origins: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:8233"])
    tokens: list[SecretStr] = Field(default_factory=list)
    session_hours: float = Field(default=12.0, gt=0)
    session_cookie_secure: bool = False
    # Larger request bodies are refused with 413 (Temporal's own blob limit is 2 MiB).
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1)

    @field_validator("tokens")
    @classmethod
    def _tokens_are_long_enough(cls, tokens: list[SecretStr]) -> list[SecretStr]:
        for position, token in enumerate(tokens):
            if len(token.get_secret_value()) < 16:
                raise ValueError(f"token #{position + 1} is shorter than 16 characters")
        return tokens

    @field_validator("allowed_origins")
    @classmethod
    def _origins_are_bare(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if not re.match(r"^https?://[^/\s]+$", origin):
                raise ValueError(
                    f"origin {origin!r} must be scheme://host[:port], no path (e.g. "
                    "http://127.0.0.1:8233)"
                )
        return origins
