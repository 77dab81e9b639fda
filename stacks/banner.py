"""What ``make run`` and ``make cluster`` print for a person: where everything is, the
dev key, how to read encrypted payloads in the Web UI and on the command line."""

from __future__ import annotations

import os
from dataclasses import dataclass

from config.codec import CodecKeys
from config.telemetry import TelemetrySettings


@dataclass(frozen=True)
class Ports:
    """The ports a person uses: Temporal, its Web UI, the sandbox, the API, the codec server."""

    temporal: int
    ui: int
    sandbox: int
    api: int
    codec: int = 8089

    @classmethod
    def from_env(cls) -> Ports:
        return cls(
            temporal=int(os.environ.get("TEMPORAL_PORT", "7233")),
            ui=int(os.environ.get("TEMPORAL_UI_PORT", "8233")),
            sandbox=int(os.environ.get("SANDBOX_PORT", "8099")),
            api=int(os.environ.get("CANCEL_API_PORT", "8080")),
            codec=int(os.environ.get("CANCEL_CODEC_SERVER_PORT", "8089")),
        )

    @property
    def codec_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.codec}"


def codec_banner(
    ports: Ports,
    token: str | None,
    keys: CodecKeys,
    *,
    ui_codec: bool = True,
    cli: str = "temporal",
) -> str:
    """What an operator needs to read encrypted payloads: the endpoint, the token,
    the UI's steps (its own login-less UI has no token to pass, so the browser signs
    in once and sends the session cookie), the CLI command, and which key is in use."""
    endpoint = ports.codec_endpoint
    shown_token = token or "<a token from CANCEL_CODEC_SERVER_TOKENS>"
    token_line = (
        f"    Codec token       {token}  (a new one each `make run`)\n"
        if token
        else "    Codec tokens      from CANCEL_CODEC_SERVER_TOKENS\n"
    )
    if keys.dev_key_file is not None:
        key_line = (
            f"    Payload key       generated local development key at {keys.dev_key_file};"
            " not for production\n"
        )
    else:
        key_line = (
            f"    Payload keys      from CANCEL_CODEC_KEYS (current: {keys.current_key_id})\n"
        )
    ui_line = (
        f"    (the UI was started with --ui-codec-endpoint {endpoint})\n"
        if ui_codec
        else "    (DEVSTACK_UI_CODEC=off: the UI has no codec endpoint; payloads show encrypted)\n"
    )
    return f"""  Payloads are encrypted (AES-256-GCM). To read them:
    Codec server      {endpoint}
{token_line}{key_line}
  In the Web UI (http://127.0.0.1:{ports.ui}):
    1. open {endpoint}/login in the same browser and paste the codec token (once per
       browser; sets a session cookie)
    2. in the UI's top bar open "Codec Server", choose "Use my browser setting and
       ignore Cluster-level setting", endpoint {endpoint}, switch on
       "Include cross-origin credentials" (not "Pass the user access token"), Apply
{ui_line}
  On the command line:
    {cli} workflow show --address 127.0.0.1:{ports.temporal} -w <workflow id> \\
      --codec-endpoint {endpoint} --codec-auth 'Bearer {shown_token}'

"""


def metrics_lines(env: dict[str, str]) -> str:
    """Where the worker and the API serve Prometheus metrics (empty address: off)."""
    defaults = TelemetrySettings.model_fields
    lines = ""
    for name, field, variable in (
        ("Worker metrics", "metrics_worker_address", "CANCEL_METRICS_WORKER_ADDRESS"),
        ("API metrics", "metrics_api_address", "CANCEL_METRICS_API_ADDRESS"),
    ):
        address = env.get(variable, defaults[field].default)
        if address:
            lines += f"    {name:<18}http://{address}/metrics\n"
    return lines


def banner(
    ports: Ports,
    address: str,
    dev_key: str | None = None,
    codec: str = "",
    metrics: str = "",
) -> str:
    env = "" if ports.temporal == 7233 else f"TEMPORAL_ADDRESS={address} "
    api = f"http://127.0.0.1:{ports.api}"
    key = dev_key or "$YOUR_KEY"
    key_line = (
        f"    API dev key       {dev_key}  (all scopes; a new one each `make run`)\n"
        if dev_key
        else "    API keys          from CANCEL_API_KEYS\n"
    )
    return f"""
  cancellation-orchestrator is running
    Temporal Web UI   http://127.0.0.1:{ports.ui}/namespaces/default/workflows
    Temporal          {address}
    Provider sandbox  http://127.0.0.1:{ports.sandbox}  (call log: /_sandbox/calls)
    HTTP API          {api}  (docs: {api}/docs)
{key_line}{metrics}
  Try it (in another shell):
    {env}.venv/bin/cancelctl terminate --subscription-id SUB-DEMO-1
    {env}.venv/bin/cancelctl status terminate-SUB-DEMO-1
    curl -s -X POST {api}/v1/line-terminations -H 'Authorization: Bearer {key}' \\
      -H 'Content-Type: application/json' -d '{{"subscriptionId": "SUB-DEMO-2"}}'
    curl -s {api}/v1/sagas/terminate-SUB-DEMO-2 -H 'Authorization: Bearer {key}'

{codec}  Ctrl-C stops everything.
"""
