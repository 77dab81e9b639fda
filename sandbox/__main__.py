"""``python -m sandbox [--host 127.0.0.1] [--port 8099] [--state-file PATH]``: run the sandbox."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn

from sandbox.app import create_app
from sandbox.persistence import StateFileError
from sandbox.settings import SandboxSettings


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description="Stateful sandbox of the sTN, Rebilly and Airalo provider APIs. "
        "Configure with SANDBOX_* environment variables (see sandbox/README.md).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8099, help="port (default 8099)")
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug", "trace"],
        help="uvicorn log level (default warning)",
    )
    parser.add_argument(
        "--state-file",
        metavar="PATH",
        help="keep provider state in this JSON file across restarts "
        "(default: $SANDBOX_STATE_FILE, else memory only)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    settings = (
        SandboxSettings()
        if args.state_file is None
        else SandboxSettings(state_file=args.state_file)
    )
    try:
        app = create_app(settings)
    except StateFileError as error:
        raise SystemExit(f"sandbox: {error}") from error
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
