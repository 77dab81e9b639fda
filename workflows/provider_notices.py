"""Provider notices (webhooks) routed to a saga: the ``provider_notice`` signal, once.

A saga class inherits :class:`ReceivesNotices`: every notice is recorded once on
its audit trail and in its status (providers may deliver a webhook several
times), and the saga's :meth:`~ReceivesNotices._on_notice` decides what it means.
A notice changes what the saga knows, never what it asked for: it calls no
provider and is never an operator request.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.common import ProviderNotice, SagaSignal

from workflows.ledger import SagaLedger


class NoticeBoard:
    """The notices one saga received, each once, in order of arrival."""

    def __init__(self, ledger: SagaLedger) -> None:
        self._ledger = ledger
        self.received: list[ProviderNotice] = []

    def post(self, notice: ProviderNotice) -> bool:
        """Record ``notice``; ``False`` for a duplicate delivery (nothing recorded)."""
        if any(seen.key() == notice.key() for seen in self.received):
            return False
        self.received.append(notice)
        when = f" at {notice.at.isoformat()}" if notice.at else ""
        detail = f": {notice.detail}" if notice.detail else ""
        self._ledger.record(
            "provider_notice", f"{notice.provider} {notice.event} {notice.subject}{when}{detail}"
        )
        return True


class ReceivesNotices:
    """A saga that provider webhooks are routed to."""

    _notice_board: NoticeBoard

    def _on_notice(self, notice: ProviderNotice) -> None:
        """What a (first) notice means to this saga; by default, only recorded."""

    @workflow.signal(
        name=SagaSignal.PROVIDER_NOTICE,
        description="A provider's webhook about something this saga holds (recorded once)",
    )
    def provider_notice(self, notice: ProviderNotice) -> None:
        if self._notice_board.post(notice):
            self._on_notice(notice)
