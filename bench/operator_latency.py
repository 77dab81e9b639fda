"""Benchmark 5: a revoke answered within the bound while hundreds of sagas start.

``python -m bench.operator_latency [--sagas 300] [--revokes 5]``: ``--revokes`` + 1 sTN
terminations due tomorrow are started and wait (the targets). One is revoked through
the HTTP API with the worker idle. Then ``--sagas`` more terminations are started
through the API (32 requests in flight), and while they start the other targets are
revoked through the API one after another, half a second apart.

An operator request waits for the saga's answer at most ``CANCEL_OPERATOR_WAIT_SECONDS``
(the bound, 5 s by default): within it the answer is the saga's (200, phase
``REVOKED``); past it, 202 with the status URL, and the revoke is applied once the
worker takes it. Each row: how the revokes were answered, how long the answers took
(the longest must stay within the bound, plus the few milliseconds of the request),
and how long after each request its saga was ``REVOKED`` (read from the run's
``CancellationStatus``, which needs no worker). "during" counts the revokes sent while
the wave was still starting.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bench import cli, report
from bench.measure import Spread, start_all
from bench.target import Bench, running
from config.settings import OrchestratorSettings
from domain import search_attributes as sa
from domain.common import SagaKind, SagaPhase
from reliability.entrypoints import Answer, Api

#: Requests in flight while the wave starts (as bench.intake).
CONCURRENCY = 32
#: Between two revokes during the wave.
REVOKE_GAP_SECONDS = 0.5
#: How long a revoke may take to be applied before the run is called failed.
APPLIED_WITHIN_SECONDS = 300.0


@dataclass
class Revokes:
    """The revokes of one row: how each was answered, and when each was applied."""

    label: str
    answers: list[Answer] = field(default_factory=list)
    answer_seconds: list[float] = field(default_factory=list)
    applied_seconds: list[float] = field(default_factory=list)
    during_wave: int = 0

    def count(self, status: int) -> int:
        return sum(answer.code == status for answer in self.answers)


def _termination(tag: str, index: int) -> dict[str, str]:
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    return {"subscriptionId": f"SUB-OL{tag}-{index:05d}", "wishDate": tomorrow.isoformat()}


async def _start(api: Api, body: dict[str, str]) -> str:
    answer = await api.start(SagaKind.LINE_TERMINATION, body)
    if not answer.ok or answer.workflow_id is None:
        raise RuntimeError(f"the API answered {answer.code}: {answer.text[:300]}")
    return answer.workflow_id


async def _phase(bench: Bench, workflow_id: str) -> str | None:
    described = await bench.client.get_workflow_handle(workflow_id).describe()
    return described.typed_search_attributes.get(sa.CANCELLATION_STATUS)


async def _until(bench: Bench, workflow_id: str, phase: SagaPhase, within: float) -> float:
    """Seconds until the run's ``CancellationStatus`` is ``phase`` (polled)."""
    began = time.monotonic()
    while await _phase(bench, workflow_id) != phase:
        bench.check_alive()
        if time.monotonic() - began > within:
            raise TimeoutError(f"{workflow_id} not {phase} after {within:.0f} s")
        await asyncio.sleep(0.2)
    return time.monotonic() - began


async def _revoke(bench: Bench, api: Api, workflow_id: str, row: Revokes) -> None:
    sent = time.monotonic()
    answer = await api.post(f"/v1/sagas/{workflow_id}/revoke", {"reason": "bench: stays"})
    row.answer_seconds.append(time.monotonic() - sent)
    row.answers.append(answer)
    if answer.code not in (200, 202):
        raise RuntimeError(f"revoke of {workflow_id} answered {answer.code}: {answer.text[:300]}")
    await _until(bench, workflow_id, SagaPhase.REVOKED, APPLIED_WITHIN_SECONDS)
    row.applied_seconds.append(time.monotonic() - sent)


async def measure(bench: Bench, sagas: int, revokes: int) -> list[Revokes]:
    api = Api(bench)
    tag = uuid.uuid4().hex[:8].upper()
    try:
        targets = [await _start(api, _termination(tag, i)) for i in range(revokes + 1)]
        for target in targets:
            await _until(bench, target, SagaPhase.WAITING, 120.0)
        idle = Revokes("worker idle")
        await _revoke(bench, api, targets[0], idle)

        busy = Revokes(f"while {sagas} sagas start")
        wave = [_termination(tag, revokes + 1 + i) for i in range(sagas)]

        async def one(index: int) -> None:
            await _start(api, wave[index])

        starting = asyncio.create_task(start_all(sagas, one, concurrency=CONCURRENCY))
        applying = []
        for target in targets[1:]:
            await asyncio.sleep(REVOKE_GAP_SECONDS)
            busy.during_wave += not starting.done()
            applying.append(asyncio.create_task(_revoke(bench, api, target, busy)))
            await asyncio.sleep(0)  # the request is on its way before the next gap
        await asyncio.gather(starting, *applying)
        return [idle, busy]
    finally:
        await api.close()


def _seconds(values: list[float]) -> str:
    spread = Spread.of(values)
    return f"{spread.p50:.2f} / {spread.max:.2f}"


def table(rows: list[Revokes], bound: float) -> str:
    return report.markdown_table(
        [
            "when",
            "sent",
            "during",
            "answered 200",
            "answered 202",
            "answer s p50 / max",
            "bound s",
            "REVOKED",
            "REVOKED after s p50 / max",
        ],
        [
            [
                row.label,
                str(len(row.answers)),
                str(row.during_wave),
                str(row.count(200)),
                str(row.count(202)),
                _seconds(row.answer_seconds),
                f"{bound:g}",
                str(len(row.applied_seconds)),
                _seconds(row.applied_seconds),
            ]
            for row in rows
        ],
    )


async def main(args: argparse.Namespace) -> str:
    async with running(args.target, api=True) as bench:
        rows = await measure(bench, args.sagas, args.revokes)
    section = report.Section(
        "operator",
        "10. Operator requests while the worker is busy",
        f"python -m bench.operator_latency --sagas {args.sagas} --revokes {args.revokes}",
        __doc__ or "",
        table(rows, OrchestratorSettings().operator_wait_seconds),
    )
    return report.publish(section, args.target)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = cli.parser("python -m bench.operator_latency", __doc__)
    parser.add_argument("--sagas", type=int, default=300, help="sagas started meanwhile")
    parser.add_argument("--revokes", type=int, default=5, help="revokes during the wave")
    return parser.parse_args(argv)


if __name__ == "__main__":
    cli.run(main(parse_args()))
