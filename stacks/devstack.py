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

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from config.codec import CodecConfigurationError, resolve_keys
from config.temporal_cli import (
    TemporalCliUnavailable,
    dev_server_database_flags,
    ensure_temporal_cli,
)
from domain.search_attributes import dev_server_flags
from stacks.banner import Ports, banner, codec_banner, metrics_lines
from stacks.environment import Wiring, new_secret
from stacks.ports import refuse_busy_port
from stacks.product import ProductProcesses
from stacks.service import Service, stop_in_reverse, stop_signals


def dev_server(
    cli: Path,
    port: int,
    database: Path,
    *,
    log: Path | None = None,
    ui_port: int | None = None,
    codec_endpoint: str | None = None,
    base: Mapping[str, str] | None = None,
) -> Service:
    """Temporal's dev server on SQLite at ``database``, our search attributes
    registered; its Web UI on ``ui_port`` (``None``: headless), decoding payloads
    through ``codec_endpoint`` when given."""
    ui = ["--headless"] if ui_port is None else ["--ui-port", str(ui_port)]
    return Service(
        "Temporal dev server",
        [
            str(cli),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            *ui,
            *dev_server_database_flags(database),
            "--log-level",
            "error",
            *dev_server_flags(),
            *(["--ui-codec-endpoint", codec_endpoint] if codec_endpoint else []),
        ],
        dict(os.environ if base is None else base),
        log,
        port=port,
    )


class DevStack:
    """The dev server and the product's processes on it, started and stopped in order."""

    def __init__(self, server: Service, product: ProductProcesses) -> None:
        self.server = server
        self.product = product

    def processes(self, *, api: bool = True) -> list[Service]:
        """In start order: server, sandbox, codec server, worker(s), API (if ``api``)."""
        product = self.product.in_start_order()
        return [self.server, *(p for p in product if api or p is not self.product.api)]

    def start(self, *, api: bool = True) -> None:
        for process in self.processes(api=api):
            process.start()

    def stop(self, *, say: bool = False) -> None:
        """API and worker first, the server last; ``say``: print each as it stops."""
        stop_in_reverse(self.processes(), say=say)

    def died(self) -> list[Service]:
        """Processes that exited although nobody stopped them."""
        return [process for process in self.processes() if process.died]


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
    wiring = Wiring(
        temporal_address=address,
        sandbox_url=f"http://127.0.0.1:{ports.sandbox}",
        api_port=ports.api,
        api_token=None if os.environ.get("CANCEL_API_KEYS") else new_secret(),
        codec_port=ports.codec,
        codec_token=None if os.environ.get("CANCEL_CODEC_SERVER_TOKENS") else new_secret(),
        ui_port=ports.ui,
        # Readable log lines in the terminal; production keeps JSON (docs/observability.md).
        log_format="pretty",
    )
    ui_codec = os.environ.get("DEVSTACK_UI_CODEC", "on").lower() != "off"
    stack = DevStack(
        dev_server(
            cli,
            ports.temporal,
            data_dir / "temporal.db",
            ui_port=ports.ui,
            codec_endpoint=ports.codec_endpoint if ui_codec else None,
        ),
        # Output to this terminal.
        ProductProcesses(wiring, logs=None, state_file=data_dir / "sandbox-state.json"),
    )

    stop_requested = stop_signals()
    try:
        stack.start()
        codec = codec_banner(ports, wiring.codec_token, codec_keys, ui_codec=ui_codec, cli=str(cli))
        metrics = metrics_lines(stack.product.workers[0].env)
        print(banner(ports, address, wiring.api_token, codec, metrics), flush=True)
        while not stop_requested():
            for process in stack.died():
                assert process.process is not None
                raise RuntimeError(
                    f"{process.name} exited unexpectedly (code {process.process.returncode})"
                )
            time.sleep(0.5)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        stack.stop(say=True)
        return 1
    stack.stop(say=True)
    print("stopped; saga state is kept in", data_dir / "temporal.db")
    return 0


if __name__ == "__main__":
    sys.exit(main())
