"""Each saga's counters (``docs/observability.md``), counted once for all four sagas.

:class:`workflows.steering.Steering` owns one :class:`SagaMetrics` from the saga's
start to its close. The workflow metric meter records nothing while a workflow
replays, and a metric is not a command: counting changes no history.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.common import SagaPhase

from workflows.ledger import LedgerWatcher, SagaLedger

#: Counters (``docs/observability.md``), labelled ``kind`` and ``provider``.
SAGAS_STARTED = "cancel_sagas_started_total"
SAGAS_ENDED = {
    SagaPhase.COMPLETED: "cancel_sagas_completed_total",
    SagaPhase.FAILED: "cancel_sagas_failed_total",
    SagaPhase.COMPENSATED: "cancel_sagas_compensated_total",
    SagaPhase.REVOKED: "cancel_sagas_revoked_total",
}
SAGAS_NEEDING_ATTENTION = "cancel_sagas_needing_attention_total"
COMPENSATION_FAILURES = "cancel_compensation_failures_total"
_DESCRIPTIONS = {
    SAGAS_STARTED: "Sagas started",
    **{name: f"Sagas that ended {phase.value}" for phase, name in SAGAS_ENDED.items()},
    SAGAS_NEEDING_ATTENTION: "Sagas that moved to NEEDS_ATTENTION (an operator must resolve)",
    COMPENSATION_FAILURES: "Sagas whose compensation could not undo everything",
}


class SagaMetrics(LedgerWatcher):
    """One saga's counters, through the workflow's metric meter.

    That meter records nothing while the workflow replays (``workflow.metric_meter``),
    and a metric is not a command: counting changes no history. Each is counted at
    one point of the saga's life, as the ledger records it, so a replayed run does not
    count again. Labels: ``kind`` and ``provider`` (the saga's providers joined by ``+``,
    e.g. ``stn+rebilly+airalo`` for a churn, so summing over it counts each saga once).
    """

    def __init__(self, ledger: SagaLedger) -> None:
        self._ledger = ledger
        self._previous: SagaPhase | None = None
        self._undo_failed = False
        self._ended = False
        ledger.watch(self)

    def _count(self, name: str) -> None:
        if not workflow.in_workflow():
            return  # a saga built outside a workflow (a unit test of a validator)
        ledger = self._ledger
        workflow.metric_meter().create_counter(name, _DESCRIPTIONS[name]).add(
            1, {"kind": str(ledger.kind), "provider": "+".join(map(str, ledger.providers))}
        )

    def started(self) -> None:
        self._count(SAGAS_STARTED)

    def phase_changed(self, previous: SagaPhase, phase: SagaPhase) -> None:
        """Count an arrival in ``NEEDS_ATTENTION`` (a compensation failed if it came
        from ``COMPENSATING``); staying in it is no new arrival."""
        self._previous = previous
        if phase == SagaPhase.NEEDS_ATTENTION and previous != SagaPhase.NEEDS_ATTENTION:
            self._count(SAGAS_NEEDING_ATTENTION)
            if previous == SagaPhase.COMPENSATING:
                self._count(COMPENSATION_FAILURES)

    def undo_failed(self) -> None:
        self._undo_failed = True

    def ended(self) -> None:
        """Count the final phase, once; a saga not final (a failed task) counts nothing.

        A compensation failed when the saga went from ``COMPENSATING`` to ``FAILED``
        (it could not undo), or when the ledger noted an undo failure (a revoke that
        could not re-create an Airalo order). Arrivals in ``NEEDS_ATTENTION`` from
        ``COMPENSATING`` count as they happen (:meth:`phase_changed`).
        """
        phase = self._ledger.phase
        if self._ended or not phase.is_final:
            return
        self._ended = True
        self._count(SAGAS_ENDED[phase])
        could_not_undo = phase == SagaPhase.FAILED and self._previous == SagaPhase.COMPENSATING
        if could_not_undo or self._undo_failed:
            self._count(COMPENSATION_FAILURES)
