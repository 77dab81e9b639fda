"""The queue of operator requests (revoke, reschedule, ...) between handlers and the loop.

A handler posts a request and waits; the saga's loop (``workflows.steering``)
applies it when it is safe, and the handler returns the outcome to the caller
(or raises the refusal as the update's failure). A request is its update's
validated argument, so what the loop hands a saga's handler is typed: its kind is
the type of the request (:func:`kind_of`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.churn import ResolveRequest
    from domain.common import ErrorType, OperatorRequestKind, RescheduleRequest, RevokeRequest


@dataclass(frozen=True)
class ConfirmRequest:
    """The ``confirm`` update's request (the update itself takes no argument)."""


#: Every operator request a saga's loop can be handed.
OperatorPayload = RevokeRequest | RescheduleRequest | ConfirmRequest | ResolveRequest


def kind_of(payload: OperatorPayload) -> OperatorRequestKind:
    match payload:
        case RevokeRequest():
            return OperatorRequestKind.REVOKE
        case RescheduleRequest():
            return OperatorRequestKind.RESCHEDULE
        case ConfirmRequest():
            return OperatorRequestKind.CONFIRM
        case ResolveRequest():
            return OperatorRequestKind.RESOLVE


@dataclass
class OperatorRequest:
    payload: OperatorPayload
    done: bool = False
    error: str | None = field(default=None)

    @property
    def kind(self) -> OperatorRequestKind:
        return kind_of(self.payload)

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

    async def submit(self, payload: OperatorPayload) -> None:
        """Queue a request and wait until the saga has applied or refused it."""
        request = OperatorRequest(payload)
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
