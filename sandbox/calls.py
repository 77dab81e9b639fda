"""The call log: every request that reached a provider route, as the client saw it."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from sandbox.errors import ProviderName

#: Body fields whose values never reach the log.
MASKED_FIELDS = frozenset({"client_secret"})
MASK = "***"


def mask_secrets(body: Any) -> Any:
    """Replace secret values in a (top-level) JSON object or form body."""
    if isinstance(body, dict):
        return {key: MASK if key in MASKED_FIELDS else value for key, value in body.items()}
    return body


def query_dict(pairs: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    """Query parameters as a dict; a repeated parameter becomes a list."""
    result: dict[str, str | list[str]] = {}
    for key, value in pairs:
        current = result.get(key)
        if current is None:
            result[key] = value
        elif isinstance(current, list):
            current.append(value)
        else:
            result[key] = [current, value]
    return result


@dataclass
class CallRecord:
    seq: int
    at: str
    provider: ProviderName
    method: str
    path: str
    query: dict[str, str | list[str]]
    request_body: Any
    status: int = 0
    fault: str | None = None
    applied: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "provider": self.provider,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "requestBody": self.request_body,
            "fault": self.fault,
            "applied": self.applied,
        }


class CallLog:
    """Append-only list of finished calls, numbered in order of arrival."""

    def __init__(self) -> None:
        self._records: list[CallRecord] = []
        self._seq = itertools.count(1)

    def next_seq(self) -> int:
        return next(self._seq)

    def append(self, record: CallRecord) -> None:
        self._records.append(record)

    def clear(self) -> None:
        self._records.clear()
        self._seq = itertools.count(1)

    def query(
        self, provider: str | None = None, method: str | None = None, path: str | None = None
    ) -> list[CallRecord]:
        """Finished calls in arrival order; ``path`` must match exactly."""
        return sorted(
            (
                record
                for record in self._records
                if (provider is None or record.provider == provider)
                and (method is None or record.method == method.upper())
                and (path is None or record.path == path)
            ),
            key=lambda record: record.seq,
        )
