"""``python -m starter.api [--host H] [--port P]``: serve the HTTP API with uvicorn.

Host and port default to ``CANCEL_API_HOST`` / ``CANCEL_API_PORT`` (127.0.0.1:8080).
Logs, metrics (Prometheus on ``CANCEL_METRICS_API_ADDRESS``, default 127.0.0.1:9465)
and tracing come from ``config/telemetry.py`` (``docs/observability.md``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import uvicorn
from pydantic import ValidationError

from config.codec import CodecConfigurationError
from config.settings import ApiSettings
from config.telemetry import TelemetrySettings, configure_logging, runtime, start_tracing
from config.temporal import data_converter
from starter.api.app import ApiTelemetry, create_app

log = logging.getLogger("starter.api")


def main() -> int:
    settings = ApiSettings()
    parser = argparse.ArgumentParser(prog="python -m starter.api", description=__doc__)
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    args = parser.parse_args()
    observed = TelemetrySettings()
    configure_logging(observed)
    try:
        # Payload keys are checked now, not at the first request: production without a
        # key must not start (docs/security.md).
        data_converter()
    except (CodecConfigurationError, ValidationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not settings.keys:
        log.warning("CANCEL_API_KEYS is empty: every call is refused (401)")
    tracing = start_tracing(observed, "cancellation-api")
    telemetry = ApiTelemetry(
        # The process's one Runtime: its Temporal client's and its metrics' (same endpoint).
        runtime=runtime(observed.metrics_api_address),
        tracing=tracing,
        attention_refresh_seconds=observed.attention_refresh_seconds,
    )
    try:
        uvicorn.run(
            create_app(settings, telemetry=telemetry),
            host=args.host,
            port=args.port,
            # Uvicorn's loggers go through ours (JSON or pretty), not its own handlers.
            log_config=None,
            log_level=observed.log_level.lower(),
        )
    finally:
        if tracing is not None:
            tracing.shutdown()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # The Temporal client's Rust threads can outlive the loop (temporalio/sdk-python#300).
    os._exit(code)
