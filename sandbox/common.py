"""Small helpers shared by the gateway and the provider modules."""

from __future__ import annotations

import json
import random
import secrets
import string
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from sandbox.clock import Clock, truncate_ms, utc_now
from sandbox.settings import SandboxSettings

ALPHANUMERIC = string.ascii_letters + string.digits
FAULT_RNG_SEED = 0


@dataclass
class SandboxContext:
    """Settings, clock and randomness shared by every part of one sandbox app."""

    settings: SandboxSettings
    clock: Clock = utc_now
    rng: random.Random = field(default_factory=lambda: random.Random(FAULT_RNG_SEED))

    def now(self) -> datetime:
        """The current time, truncated to milliseconds (see :func:`truncate_ms`)."""
        return truncate_ms(self.clock())

    def reseed(self) -> None:
        self.rng.seed(FAULT_RNG_SEED)


def random_id(length: int, alphabet: str = ALPHANUMERIC) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def parse_body(raw: bytes, content_type: str | None) -> Any:
    """Parse a request body as the providers do: form-encoded, else JSON.

    Returns ``None`` for an empty or unparsable body.
    """
    if not raw:
        return None
    if content_type and content_type.split(";")[0].strip() == "application/x-www-form-urlencoded":
        return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return None


async def read_payload(request: Request) -> Any:
    """The parsed request body (see :func:`parse_body`)."""
    return parse_body(await request.body(), request.headers.get("content-type"))
