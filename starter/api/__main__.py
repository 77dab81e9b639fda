"""``python -m starter.api [--host H] [--port P]``: serve the HTTP API with uvicorn.

Host and port default to ``CANCEL_API_HOST`` / ``CANCEL_API_PORT`` (127.0.0.1:8080).
"""

from __future__ import annotations

import argparse
import os
import sys

import uvicorn

from config.settings import ApiSettings
from starter.api.app import create_app


def main() -> int:
    settings = ApiSettings()
    parser = argparse.ArgumentParser(prog="python -m starter.api", description=__doc__)
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    args = parser.parse_args()
    if not settings.keys:
        print("warning: CANCEL_API_KEYS is empty: every call is refused (401)", file=sys.stderr)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # The Temporal client's Rust threads can outlive the loop (temporalio/sdk-python#300).
    os._exit(code)
