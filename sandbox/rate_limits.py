"""A provider's request quota: at most ``limit`` requests in any sliding ``window``.

Airalo's ``/v2/token`` limit and Rebilly's limit on writes are both one of these; each
provider renders a refusal in its own shape (``Retry-After`` or Rebilly's epoch).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Admission:
    """What one request was told: admitted with ``remaining`` tokens left, or refused
    until ``retry_after`` has passed."""

    limit: int
    remaining: int
    retry_after: timedelta | None = None

    @property
    def admitted(self) -> bool:
        return self.retry_after is None


@dataclass
class SlidingWindow:
    """Every admitted request counts for ``window``; a refused one does not count."""

    _admitted: deque[datetime] = field(default_factory=deque)

    def admit(self, now: datetime, limit: int, window: timedelta) -> Admission:
        while self._admitted and self._admitted[0] <= now - window:
            self._admitted.popleft()
        if len(self._admitted) >= limit:
            wait = self._admitted[0] + window - now if self._admitted else window
            return Admission(limit, 0, max(wait, timedelta(0)))
        self._admitted.append(now)
        return Admission(limit, limit - len(self._admitted))

    def clear(self) -> None:
        self._admitted.clear()
