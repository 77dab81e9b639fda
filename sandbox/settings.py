"""Runtime configuration of the provider sandbox (environment prefix ``SANDBOX_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Settings that are never echoed back by ``GET /_sandbox/config``.
SECRET_FIELDS = frozenset(
    {"stn_api_key", "rebilly_api_key", "airalo_client_secret", "rebilly_webhook_password"}
)
#: Settings that only take effect at startup; ``POST /_sandbox/config`` refuses them.
STARTUP_FIELDS = frozenset({"state_file"})


class SandboxSettings(BaseSettings):
    """Credentials and timing knobs of the three simulated providers, and the state file."""

    model_config = SettingsConfigDict(env_prefix="SANDBOX_", extra="forbid")

    stn_api_key: str = "sandbox-stn-key"
    #: How long a termination stays BUSY after its wish date (or creation).
    stn_processing_delay_seconds: float = 1.0
    #: How long a cancellation (CancelTerminateSubscription) stays BUSY after its creation.
    stn_cancellation_delay_seconds: float = 0.5

    rebilly_api_key: str = "sk_sandbox_rebilly"
    rebilly_organization_id: str = "org-sandbox"
    #: Renewal period of implicit orders; also the proration denominator.
    rebilly_default_renewal_days: int = 30
    #: Writes (every method but GET) per sliding window: Rebilly's documented sandbox
    #: limit, "3000 requests per 10 minutes" for non-GET endpoints. Successful writes
    #: carry ``X-RateLimit-Limit``/``-Remaining``; one over the limit gets 429.
    rebilly_write_rate_limit: int = Field(default=3000, ge=1)
    rebilly_write_rate_limit_window_seconds: float = Field(default=600.0, gt=0.0)

    airalo_client_id: str = "sandbox-airalo-client"
    airalo_client_secret: str = "sandbox-airalo-secret"
    airalo_token_expires_in: int = 86400
    airalo_token_rate_limit_per_minute: int = 5
    #: Refuse (401) a ``POST`` whose ``airalo-signature`` does not sign its body as the
    #: official SDK does. Off: Airalo documents no such check (its own examples send
    #: none); the test suite turns it on, so every Airalo call of every test is checked.
    airalo_require_signature: bool = False
    #: The partner's opted-in ``async_orders`` webhook URL; ``None``: not opted in, so a
    #: future order without ``webhook_url`` is refused (422). Fired future orders without
    #: their own ``webhook_url`` are POSTed here. The default is under the reserved
    #: ``.example`` TLD, so it only records a ``skipped`` delivery (see webhooks).
    airalo_opted_in_webhook_url: str | None = "https://partner.example/airalo/async-orders"
    #: Send Airalo webhook bodies indented and with unescaped ``/`` (the signature is still
    #: over the SDK's canonical form), to check that a receiver canonicalises before verifying.
    airalo_webhook_pretty_body: bool = False
    #: A cancel request with invalid ids cancels the valid ones and still answers the 422
    #: (off: the 422 rejects the whole request and nothing is cancelled).
    airalo_partial_cancel: bool = False

    #: Where Rebilly POSTs its subscription webhooks (``None``: no delivery), and the Basic
    #: auth credentials it sends (no ``Authorization`` header while the username is ``None``).
    rebilly_webhook_url: str | None = None
    rebilly_webhook_username: str | None = None
    rebilly_webhook_password: str | None = None

    #: Webhook delivery: attempts per delivery (first try included), the delay before the
    #: first retry (doubling after each failed attempt), and the per-attempt HTTP timeout.
    webhook_max_attempts: int = Field(default=4, ge=1, le=20)
    webhook_retry_delay_seconds: float = Field(default=0.5, ge=0.0)
    webhook_timeout_seconds: float = Field(default=5.0, gt=0.0)
    #: How often a served sandbox evaluates time-dependent statuses by itself (firing due
    #: Airalo orders, churning Rebilly orders, which sends their webhooks); 0 = never (only
    #: provider reads and ``POST /_sandbox/tick`` do).
    webhook_tick_seconds: float = Field(default=0.5, ge=0.0)

    #: JSON file that keeps provider state across restarts (``None``: memory only).
    state_file: str | None = None
