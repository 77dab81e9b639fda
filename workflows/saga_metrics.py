"""Each saga's counters (``docs/observability.md``), counted once for all four sagas.

:class:`workflows.steering.Steering` owns one :class:`SagaMetrics` from the saga's
start to its close. The workflow metric meter records nothing while a workflow
replays, and a metric is not a command: counting changes no history.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.common import SagaKind, SagaPhase

from workflows.ledger import SagaLedger

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
_PHASE_STEPS = {phase.value.lower(): phase for phase in SagaPhase}
# The step a revoke records when Airalo refuses to re-create an order it cancelled
# (the saga still ends REVOKED: nothing an operator could retry).
_RECREATE_FAILED = "recreate_failed"


class SagaMetrics:
    """One saga's counters, through the workflow's metric meter.

    That meter records nothing while the workflow replays (``workflow.metric_meter``),
    and a metric is not a command: counting changes no history. Each is counted at
    one point of the saga's life, in workflow state, so a replayed run does not count
    again. Labels: ``kind`` and ``provider`` (the saga's providers joined by ``+``,
    e.g. ``stn+rebilly+airalo`` for a churn, so summing over it counts each saga once).
    """

    def __init__(self, ledger: SagaLedger) -> None:
        self._ledger = ledger
        self._in_attention = False
        self._ended = False

    def _count(self, name: str) -> None:
        if not workflow.in_workflow():
            return  # a saga built outside a workflow (a unit test of a validator)
        kind: SagaKind = self._ledger.kind
        workflow.metric_meter().create_counter(name, _DESCRIPTIONS[name]).add(
            1,
            {"kind": kind.value, "provider": "+".join(p.value for p in self._ledger.providers)},
        )

    def started(self) -> None:
        self._count(SAGAS_STARTED)

    def observe(self) -> None:
        """Count an arrival in ``NEEDS_ATTENTION`` (once until the saga leaves it)."""
        attention = self._ledger.phase == SagaPhase.NEEDS_ATTENTION
        if attention and not self._in_attention:
            self._count(SAGAS_NEEDING_ATTENTION)
            if self._previous_phase() == SagaPhase.COMPENSATING:
                self._count(COMPENSATION_FAILURES)
        self._in_attention = attention

    def ended(self) -> None:
        """Count the final phase, once; a saga not final (a failed task) counts nothing.

        A compensation failed when the saga went from ``COMPENSATING`` to ``FAILED``
        (it could not undo), or when a revoke could not re-create an Airalo order.
        (Arrivals in ``NEEDS_ATTENTION`` from ``COMPENSATING`` count in :meth:`observe`.)
        """
        phase = self._ledger.phase
        if self._ended or not phase.is_final:
            return
        self._ended = True
        self._count(SAGAS_ENDED[phase])
        undo_failed = phase == SagaPhase.FAILED and self._previous_phase() == SagaPhase.COMPENSATING
        if undo_failed or any(step.step == _RECREATE_FAILED for step in self._ledger.steps):
            self._count(COMPENSATION_FAILURES)

    def _previous_phase(self) -> SagaPhase | None:
        phases = [_PHASE_STEPS[s.step] for s in self._ledger.steps if s.step in _PHASE_STEPS]
        return phases[-2] if len(phases) > 1 else None
