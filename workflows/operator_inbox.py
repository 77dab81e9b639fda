"""The queue of operator requests (revoke, reschedule, ...) between handlers and the loop.

A handler posts a request and waits; the saga's loop (``workflows.steering``)
applies it when it is safe, and the handler returns the outcome to the caller
(or raises the refusal as the update's failure).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.common import ErrorType


@dataclass
class OperatorRequest:
    kind: str
    payload: Any = None
    done: bool = False
    error: str | None = field(default=None)

    def finish(self, error: str | None = None) -> None:
        self.done = True
        self.error = error


class OperatorInbox:
    def __init__(self) -> None:
        self._queue: list[OperatorRequest] = []
        self.in_progress: OperatorRequest | None = None

    def has_pending(self) -> bool:
        return bool(self._queue)

    @property
    def busy(self) -> bool:
        return bool(self._queue) or self.in_progress is not None

    def peek(self) -> OperatorRequest:
        """The oldest queued request, left in the queue."""
        return self._queue[0]

    def take(self) -> OperatorRequest:
        self.in_progress = self._queue.pop(0)
        return self.in_progress

    def release(self) -> None:
        self.in_progress = None

    async def submit(self, kind: str, payload: Any = None) -> None:
        """Queue a request and wait until the saga has applied or refused it."""
        request = OperatorRequest(kind=kind, payload=payload)
        self._queue.append(request)
        await workflow.wait_condition(lambda: request.done)
        if request.error is not None:
            raise ApplicationError(
                request.error, type=ErrorType.REQUEST_REFUSED, non_retryable=True
            )

    def refuse_all(self, reason: str) -> None:
        """Release every waiting handler, e.g. when the saga ends underneath them."""
        for request in self._queue:
            request.finish(reason)
        self._queue.clear()
