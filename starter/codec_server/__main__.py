"""``python -m starter.codec_server [--host H] [--port P]``: serve the codec server.

Host and port default to ``CANCEL_CODEC_SERVER_HOST`` / ``CANCEL_CODEC_SERVER_PORT``
(127.0.0.1:8089); tokens from ``CANCEL_CODEC_SERVER_TOKENS``, allowed Web UI origins
from ``CANCEL_CODEC_SERVER_ALLOWED_ORIGINS``, keys as every other process reads them
(``CANCEL_CODEC_KEYS``, docs/security.md).
"""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn
from pydantic import ValidationError

from config.codec import CodecConfigurationError, load_codec
from config.settings import CodecServerSettings
from starter.codec_server.app import create_app


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = CodecServerSettings()
        codec = load_codec()
    except (ValidationError, CodecConfigurationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    parser = argparse.ArgumentParser(prog="python -m starter.codec_server", description=__doc__)
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    args = parser.parse_args(argv)
    if not settings.tokens:
        print(
            "error: CANCEL_CODEC_SERVER_TOKENS is empty: nobody could decode; set a JSON list "
            "of tokens (at least 16 characters each)",
            file=sys.stderr,
        )
        return 1
    logging.getLogger(__name__).info(
        "codec server on http://%s:%d, keys %s (current %s), UI origins %s",
        args.host,
        args.port,
        codec.key_ids,
        codec.current_key_id,
        settings.allowed_origins,
    )
    uvicorn.run(create_app(settings, codec), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
