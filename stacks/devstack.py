"""``make run``: the whole product on one machine, in the foreground.

Starts the Temporal dev server with its Web UI (SQLite under ``.data/`` so
sagas survive a restart, our search attributes registered), the provider
sandbox, the codec server (payloads are encrypted; the UI decodes through it),
the worker and the HTTP API; prints the UI URL, the API's URL with a freshly
generated local dev key, the codec server with a per-run token and how to decode
in the UI, and ready-to-paste ``cancelctl`` and ``curl`` examples; Ctrl-C stops
everything, API and worker first.

Ports (environment): ``TEMPORAL_PORT`` (7233), ``TEMPORAL_UI_PORT`` (8233),
``SANDBOX_PORT`` (8099), ``CANCEL_API_PORT`` (8080), ``CANCEL_CODEC_SERVER_PORT``
(8089); ``DEVSTACK_DATA_DIR`` (``.data``). With ``CANCEL_API_KEYS`` set, those keys
are used and no dev key is made; likewise ``CANCEL_CODEC_SERVER_TOKENS``.
``DEVSTACK_UI_CODEC=off`` starts the Web UI without a codec endpoint (it then shows
payloads in their encrypted form). Payload keys: ``CANCEL_CODEC_KEYS``, else a
generated local development key (``config.codec``; refused with
``CANCEL_ENVIRONMENT=production``).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from pydantic import ValidationError

from config.codec import CodecConfigurationError, CodecKeys, resolve_keys
from config.settings import ApiScope
from config.telemetry import TelemetrySettings
from config.temporal_cli import (
    TemporalCliUnavailable,
    dev_server_database_flags,
    ensure_temporal_cli,
)
from domain.search_attributes import dev_server_flags
from sandbox.settings import SandboxSettings

STARTUP_SECONDS = 60.0
# Stopped with SIGINT (they shut down cleanly on it), the others with SIGTERM.
_GRACEFUL = frozenset({"worker", "HTTP API"})
STOP_SECONDS = 15.0


@dataclass(frozen=True)
class Ports:
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


def wait_for_port(port: int, name: str, process: subprocess.Popen[bytes]) -> None:
    """Poll until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode} during startup")
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not open port {port} within {STARTUP_SECONDS:.0f}s")


def refuse_busy_port(port: int, name: str) -> None:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise RuntimeError(
                f"port {port} for {name} is already in use; stop that process or set another port"
            )


def main() -> int:
    ports = Ports.from_env()
    data_dir = Path(os.environ.get("DEVSTACK_DATA_DIR", ".data")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        cli = ensure_temporal_cli()
        for port, name in (
            (ports.temporal, "Temporal"),
            (ports.ui, "Temporal UI"),
            (ports.sandbox, "sandbox"),
            (ports.api, "HTTP API"),
            (ports.codec, "codec server"),
        ):
            refuse_busy_port(port, name)
        # Once here, before anything starts: production without a key stops the stack,
        # and a generated dev key exists before the processes that share it start.
        codec_keys = resolve_keys()
    except (TemporalCliUnavailable, RuntimeError, CodecConfigurationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ValidationError as error:
        print(f"error: payload encryption settings: {error}", file=sys.stderr)
        return 1

    address = f"127.0.0.1:{ports.temporal}"
    sandbox_url = f"http://127.0.0.1:{ports.sandbox}"
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": address,
        "STN_BASE_URL": f"{sandbox_url}/stn",
        "REBILLY_BASE_URL": f"{sandbox_url}/rebilly/organizations/org-sandbox",
        "AIRALO_BASE_URL": f"{sandbox_url}/airalo",
    }
    # Readable log lines in the terminal; production keeps JSON (docs/observability.md).
    env.setdefault("CANCEL_LOG_FORMAT", "pretty")
    dev_key = None if os.environ.get("CANCEL_API_KEYS") else secrets.token_urlsafe(24)
    api_env = {**env, "CANCEL_API_HOST": "127.0.0.1", "CANCEL_API_PORT": str(ports.api)}
    if dev_key is not None:
        api_env["CANCEL_API_KEYS"] = json.dumps([dev_api_key(dev_key)])
    # The sandbox's webhooks go to the API: Airalo's signed with the sandbox's client
    # secret, Rebilly's with a per-run Basic password.
    hooks = f"http://127.0.0.1:{ports.api}/v1/webhooks"
    hook_password = secrets.token_urlsafe(18)
    # Re-created future orders name the API as their webhook destination.
    env.setdefault("AIRALO_WEBHOOK_URL", f"{hooks}/airalo")
    sandbox_env = {
        **env,
        "SANDBOX_AIRALO_OPTED_IN_WEBHOOK_URL": f"{hooks}/airalo",
        "SANDBOX_REBILLY_WEBHOOK_URL": f"{hooks}/rebilly",
        "SANDBOX_REBILLY_WEBHOOK_USERNAME": "rebilly",
        "SANDBOX_REBILLY_WEBHOOK_PASSWORD": hook_password,
    }
    api_env.setdefault("CANCEL_API_AIRALO_WEBHOOK_SECRET", SandboxSettings().airalo_client_secret)
    api_env.setdefault("CANCEL_API_REBILLY_WEBHOOK_USERNAME", "rebilly")
    api_env.setdefault("CANCEL_API_REBILLY_WEBHOOK_PASSWORD", hook_password)
    codec_token = (
        None if os.environ.get("CANCEL_CODEC_SERVER_TOKENS") else secrets.token_urlsafe(24)
    )
    codec_env = codec_server_env(env, ports, codec_token)
    ui_codec = os.environ.get("DEVSTACK_UI_CODEC", "on").lower() != "off"
    processes: list[tuple[str, subprocess.Popen[bytes]]] = []

    def stop_all(*_: object) -> None:
        for name, process in reversed(processes):
            if process.poll() is None:
                print(f"stopping {name}...", flush=True)
                process.send_signal(signal.SIGINT if name in _GRACEFUL else signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    process.kill()

    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        server = subprocess.Popen(
            [
                str(cli),
                "server",
                "start-dev",
                "--ip",
                "127.0.0.1",
                "--port",
                str(ports.temporal),
                "--ui-port",
                str(ports.ui),
                *dev_server_database_flags(data_dir / "temporal.db"),
                "--log-level",
                "error",
                *dev_server_flags(),
                *ui_codec_flags(ports, enabled=ui_codec),
            ],
            start_new_session=True,
        )
        processes.append(("Temporal dev server", server))
        wait_for_port(ports.temporal, "Temporal dev server", server)
        sandbox = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sandbox",
                "--host",
                "127.0.0.1",
                "--port",
                str(ports.sandbox),
                "--state-file",
                str(data_dir / "sandbox-state.json"),
            ],
            env=sandbox_env,
            start_new_session=True,
        )
        processes.append(("sandbox", sandbox))
        wait_for_port(ports.sandbox, "sandbox", sandbox)
        codec_server = subprocess.Popen(
            [sys.executable, "-m", "starter.codec_server"], env=codec_env, start_new_session=True
        )
        processes.append(("codec server", codec_server))
        wait_for_port(ports.codec, "codec server", codec_server)
        worker = subprocess.Popen([sys.executable, "worker.py"], env=env, start_new_session=True)
        processes.append(("worker", worker))
        api = subprocess.Popen(
            [sys.executable, "-m", "starter.api"], env=api_env, start_new_session=True
        )
        processes.append(("HTTP API", api))
        wait_for_port(ports.api, "HTTP API", api)
        codec = codec_banner(ports, codec_token, codec_keys, ui_codec=ui_codec, cli=str(cli))
        print(banner(ports, address, dev_key, codec, metrics_lines(env)), flush=True)
        while not stopping:
            for name, process in processes:
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited unexpectedly (code {process.returncode})")
            time.sleep(0.5)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        stop_all()
        return 1
    stop_all()
    print("stopped; saga state is kept in", data_dir / "temporal.db")
    return 0


def dev_api_key(token: str) -> dict[str, object]:
    """The local dev key ``make run`` makes: every scope, valid until the stack stops."""
    return {"name": "devstack", "token": token, "scopes": [s.value for s in ApiScope]}


def ui_origins(ports: Ports) -> list[str]:
    """The Web UI's origins: the banner's 127.0.0.1 URL and the same on localhost."""
    return [f"http://127.0.0.1:{ports.ui}", f"http://localhost:{ports.ui}"]


def codec_server_env(env: dict[str, str], ports: Ports, token: str | None) -> dict[str, str]:
    """The codec server's environment: its port, the UI's origins, the run's token
    (none: ``CANCEL_CODEC_SERVER_TOKENS`` from the caller's environment is kept)."""
    codec_env = {
        **env,
        "CANCEL_CODEC_SERVER_HOST": "127.0.0.1",
        "CANCEL_CODEC_SERVER_PORT": str(ports.codec),
        "CANCEL_CODEC_SERVER_ALLOWED_ORIGINS": json.dumps(ui_origins(ports)),
    }
    if token is not None:
        codec_env["CANCEL_CODEC_SERVER_TOKENS"] = json.dumps([token])
    return codec_env


def ui_codec_flags(ports: Ports, *, enabled: bool) -> list[str]:
    """The dev server's Web UI sends payloads to our codec server (off: shown encrypted)."""
    return ["--ui-codec-endpoint", ports.codec_endpoint] if enabled else []


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


if __name__ == "__main__":
    sys.exit(main())
