"""``docs/reliability.md`` and the console summary, written from the scenarios' results."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from reliability.run import Options, ScenarioResult

MAX_LISTED_VIOLATIONS = 50

RECOVERY_DEFINITION = (
    "**Recovery time** is measured on the histories (the server's event times), for each "
    "outage the suite caused. Worker or server outage: a saga is affected if, when the "
    "outage began, it was open and had work due before the outage ended (a workflow task "
    "or activity outstanding, or a timer falling due); its recovery time runs from the "
    "outage's end (the new worker process started, the restarted server accepting "
    "connections) to its first completed workflow task after it. Provider outage (the "
    "sandbox killed, or a provider's routes refused for a while): a saga is affected if an "
    "activity calling that provider was outstanding when the outage ended; its recovery "
    "time runs from the outage's end to that activity's close. A saga affected by several "
    "outages counts once per outage; p50 and max are over all of them."
)

INVARIANTS = """\
Checked after every scenario, once every saga has settled, from the sandbox's call log and
final state (kept across sandbox restarts), every run's final status and every history:

1. every accepted saga reaches a final phase (or `NEEDS_ATTENTION` with a reason), and no
   saga runs that no accepted request describes;
2. per business key at most one effective provider effect (one sTN termination executed per
   line, one Rebilly churn per order, one Airalo cancellation per request id), no effect no
   saga accounts for (nothing terminated, churned or cancelled behind a saga's back, nothing
   left pending to execute later), and no request re-sent after the provider applied it;
3. every needed compensation applied exactly once (an sTN cancellation, a draft deleted, a
   reactivation, each cancelled eSIM order re-created once) and none that was not needed;
4. no saga `COMPLETED` (no eSIM outcome `CANCELLED`) unless the provider did it;
5. no `WorkflowTaskFailed` event in any history. One cause is told apart: `UnhandledCommand`
   where a signal or an update arrived while the task ran (typically a provider webhook
   landing as the saga completes). That is Temporal's own answer to new input: the server
   rejects the task's commands and schedules a new task at once, so that the workflow sees
   the input first; no workflow code failed. Those are counted in each scenario's counts,
   not as violations; every other cause is a violation;
6. every final saga's outcome event reaches the subscriber once after dedupe by
   `webhook-id` (one accepted `saga.completed`, `.failed`, `.revoked` or `.compensated` per
   run that ended so; none missing, none under two ids), every attempt signed; the
   subscriber (the sandbox's) answers 503 for each scenario's first 25 s (6 s quick) and
   0.5 s late after, and worker-crashes kills the worker once while it catches up.
"""


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}"


def _states(result: ScenarioResult) -> str:
    return ", ".join(f"{state} {count}" for state, count in sorted(result.final_states.items()))


def summary_rows(results: Sequence[ScenarioResult]) -> list[str]:
    rows = [
        "| scenario | sagas | runs | faults injected | crashes | restarts | final states "
        "| recovery p50 / max | violations | wall time |",
        "|---|---:|---:|---:|---:|---:|---|---|---:|---:|",
    ]
    for r in results:
        rows.append(
            f"| {r.name} | {r.sagas} | {r.runs} | {sum(r.faults.values())} | {r.crashes} | "
            f"{r.restarts} | {_states(r)} | {_seconds(r.recovery.p50)} / "
            f"{_seconds(r.recovery.max)} | {len(r.violations) + (r.error is not None)} | "
            f"{_duration(r.wall_seconds)} |"
        )
    return rows


def scenario_section(result: ScenarioResult) -> list[str]:
    lines = [f"### {result.name}: {result.title}", "", result.summary, ""]
    lines += [
        "| sagas | runs | faults injected | crashes | restarts | recovery p50 / max (n) "
        "| violations | wall time |",
        "|---:|---:|---:|---:|---:|---|---:|---:|",
        f"| {result.sagas} | {result.runs} | {sum(result.faults.values())} | {result.crashes} "
        f"| {result.restarts} | {_seconds(result.recovery.p50)} / "
        f"{_seconds(result.recovery.max)} ({len(result.recovery.samples)}) | "
        f"{len(result.violations) + (result.error is not None)} | "
        f"{_duration(result.wall_seconds)} |",
        "",
        f"Final states (every run): {_states(result) or '-'}.",
        "",
    ]
    if result.faults:
        lines += ["| fault | fired |", "|---|---:|"]
        lines += [f"| {label} | {count} |" for label, count in sorted(result.faults.items())]
        lines.append("")
    if result.notes:
        lines += ["<details><summary>counts</summary>", ""]
        lines += [f"- {note}" for note in result.notes]
        lines += ["", "</details>", ""]
    if result.error:
        lines += [f"**The scenario did not finish:** `{result.error}`", ""]
    if result.violations:
        lines += ["**Violations:**", ""]
        lines += [
            f"- `{v.key}` [{v.rule}] {v.why}" for v in result.violations[:MAX_LISTED_VIOLATIONS]
        ]
        more = len(result.violations) - MAX_LISTED_VIOLATIONS
        if more > 0:
            lines.append(f"- … and {more} more")
        lines.append("")
    return lines


def write_report(
    path: Path, results: Sequence[ScenarioResult], options: Options, command: str
) -> None:
    total = sum(len(r.violations) + (r.error is not None) for r in results)
    wall = sum(r.wall_seconds for r in results)
    lines = [
        "# Reliability: nothing lost, nothing doubled",
        "",
        "Written by the reliability suite (`reliability/`) itself; do not edit by hand.",
        "",
        f"- Reproduce: `{command}` (seed {options.seed}: the same workload and fault "
        "schedule; the interleaving still depends on timing)",
        f"- Run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node() or 'this machine'} "
        f"({platform.machine()}, Python {platform.python_version()}), {_duration(wall)} in all",
        f"- Violations: **{total}**",
        "",
        "Every scenario starts the product's own processes as `make run` does (Temporal dev "
        "server on a fresh SQLite file, the provider sandbox with `--state-file`, the worker, "
        "the HTTP API), runs its sagas of every kind — single-provider and churn, wish dates a "
        "few seconds to a minute ahead — while it injects its faults, waits until every saga "
        "has settled, then checks the invariants.",
        "",
        *summary_rows(results),
        "",
        RECOVERY_DEFINITION,
        "",
        "## Invariants",
        "",
        INVARIANTS,
        "## Scenarios",
        "",
    ]
    for result in results:
        lines += scenario_section(result)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip() + "\n")


def print_summary(results: Sequence[ScenarioResult]) -> None:
    print()
    for row in summary_rows(results):
        print(row)
    for result in results:
        if result.error:
            print(f"\n{result.name}: did not finish: {result.error} (logs in {result.workdir})")
        if result.violations:
            count = len(result.violations)
            print(f"\n{result.name}: {count} violation(s) (logs in {result.workdir}):")
            for violation in result.violations[:MAX_LISTED_VIOLATIONS]:
                print(f"  - {violation}")
