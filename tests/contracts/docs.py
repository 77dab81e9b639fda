"""The providers' documented request/response examples, as JSON fixtures.

Each file under ``tests/contracts/<provider>/`` is one documented example, copied
from the page named in its ``_source`` (the seeds in ``shared/docs/seeds/`` or the
provider's public documentation as cited in ``shared/docs/provider-contracts.md``)::

    {"_source": "...", "request": {...}, "response": {"status": 200, "json": ...}}

``request`` holds ``method``, ``path`` and whichever of ``query``, ``json``, ``form``
the docs show; ``response`` holds ``status``, ``json`` and optionally ``headers``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


@dataclass(frozen=True)
class DocExample:
    name: str
    source: str
    request: dict[str, Any] = field(default_factory=dict)
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def body(self) -> Any:
        """The documented response body."""
        return self.response.get("json")

    @property
    def status(self) -> int:
        return int(self.response.get("status", 200))


def load(provider: str, name: str) -> DocExample:
    path = HERE / provider / f"{name}.json"
    data = json.loads(path.read_text())
    if not data.get("_source"):
        raise ValueError(f"{path} does not name the page it comes from (_source)")
    return DocExample(name, data["_source"], data.get("request", {}), data.get("response", {}))


def names(provider: str) -> list[str]:
    return sorted(path.stem for path in (HERE / provider).glob("*.json"))


def shape(value: Any) -> Any:
    """Keys and nesting without values: ``{"a": {"b": "str"}, "c": ["int"]}``.

    Lists are described by the set of their items' shapes, so any number of
    results compares equal to the documented single example.
    """
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        shapes = []
        for item in value:
            if shape(item) not in shapes:
                shapes.append(shape(item))
        return shapes
    if value is None:
        return "null"
    return type(value).__name__
