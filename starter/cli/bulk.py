"""``cancelctl bulk`` and ``cancelctl upcoming``: steer a fleet, see what is coming.

``bulk revoke|reschedule|cancel|resolve`` selects running sagas (filters or a raw
``--query``), shows how many, asks before it acts (``--yes`` skips the question; a
shell that cannot answer may act on at most :data:`~domain.bulk.CONFIRM_ABOVE` sagas
without it), runs the operation durably (``BulkOperation``), shows its progress and
prints its report. ``--dry-run`` changes nothing: it lists what would be touched and
what each saga would refuse. ``bulk show ID`` / ``bulk stop ID`` follow or stop one.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import TextIO

from temporalio.client import Client

from config.settings import OrchestratorSettings
from domain.bulk import (
    CONFIRM_ABOVE,
    BulkAction,
    BulkProgress,
    BulkRequest,
    SagaOutcome,
    parse_bulk_request,
)
from domain.churn import ResolveAction
from starter import bulk, forecast
from starter.cli import output
from starter.cli.output import EXIT_FAILED, EXIT_OK
from starter.kind_flags import parse_datetime

#: How often the progress bar asks the operation where it is (a display, not a wait).
PROGRESS_EVERY = 0.5


DESCRIPTION = f"""\
Steer every running saga of a selection at once, durably (a BulkOperation workflow).

Select with filters (all must hold) or a raw --query in Temporal's visibility syntax.
The count is shown first; without --yes cancelctl asks before acting (a shell that
cannot answer may act on at most {CONFIRM_ABOVE} sagas without --yes). Each saga gets the
request through its own rules, exactly as `cancelctl revoke ID` would: its refusal is
kept in the report with its reason. --dry-run changes nothing: it lists what would be
touched and what each saga would refuse. One bulk operation runs at a time; `bulk show
ID` follows one, `bulk stop ID` stops it (what it applied stays applied).

Exit codes: 0 done; 1 refused, stopped, or a saga failed to answer; 2 invalid input.
"""


class BulkCommand(StrEnum):
    SHOW = "show"
    STOP = "stop"


def add_bulk(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bulk_parser = commands.add_parser(
        "bulk",
        help="steer every saga of a selection at once (revoke, reschedule, cancel, resolve)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = bulk_parser.add_subparsers(dest="bulk_command", required=True, metavar="ACTION")
    for action, what in (
        (BulkAction.REVOKE, "revoke every selected saga"),
        (BulkAction.RESCHEDULE, "move every selected saga to --wish-date"),
        (BulkAction.CANCEL, "cancel every selected saga's workflow (each compensates)"),
        (BulkAction.RESOLVE, "answer every selected saga waiting in NEEDS_ATTENTION"),
    ):
        parser = actions.add_parser(action, help=what)
        _add_selection(parser)
        if action == BulkAction.RESCHEDULE:
            parser.add_argument(
                "--wish-date", metavar="ISO", required=True, help="ISO 8601 with offset"
            )
        if action == BulkAction.RESOLVE:
            how = parser.add_mutually_exclusive_group(required=True)
            how.add_argument("--retry", action="store_true", help="retry what each saga owes")
            how.add_argument("--mark-handled", action="store_true", help="close each as handled")
        if action in (BulkAction.REVOKE, BulkAction.RESOLVE):
            parser.add_argument("--reason", metavar="TEXT", help="sent with each request")
        parser.add_argument(
            "--dry-run", action="store_true", help="change nothing: list what would happen"
        )
        parser.add_argument("--yes", action="store_true", help="do not ask before acting")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
    show = actions.add_parser(BulkCommand.SHOW, help="a bulk operation's progress, or its report")
    show.add_argument("operation_id", metavar="ID")
    show.add_argument("--json", action="store_true")
    stop = actions.add_parser(
        BulkCommand.STOP, help="stop a bulk operation: what it applied stays applied"
    )
    stop.add_argument("operation_id", metavar="ID")


def _add_selection(parser: argparse.ArgumentParser) -> None:
    selection = parser.add_argument_group("selection (running sagas; filters all hold)")
    selection.add_argument("--kind", metavar="KIND", help="e.g. LINE_TERMINATION")
    selection.add_argument("--provider", metavar="P", help="stn, rebilly or airalo")
    selection.add_argument("--status", metavar="PHASE", help="e.g. WAITING")
    selection.add_argument("--customer-id", metavar="ID")
    selection.add_argument("--due-after", metavar="ISO", help="wish date at or after")
    selection.add_argument("--due-before", metavar="ISO", help="wish date before")
    selection.add_argument("--query", metavar="Q", help="raw visibility query, instead of filters")


def add_upcoming(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    upcoming = commands.add_parser(
        "upcoming",
        help="how many sagas fall due per provider per hour or day, and where a lane is short",
    )
    upcoming.add_argument("--days", type=int, default=7, metavar="N", help="1 to 31 (default 7)")
    upcoming.add_argument("--by", choices=["hour", "day"], default="day")
    upcoming.add_argument("--provider", metavar="P", help="stn, rebilly or airalo")
    upcoming.add_argument("--json", action="store_true")


def prepare_bulk(
    args: argparse.Namespace, settings: OrchestratorSettings
) -> Callable[[Client], Awaitable[int]]:
    """Validate the command (``InvalidRequest``: exit 2, before connecting)."""
    if args.bulk_command == BulkCommand.SHOW:
        return lambda client: _show(client, settings, args.operation_id, as_json=args.json)
    if args.bulk_command == BulkCommand.STOP:
        return lambda client: _stop(client, settings, args.operation_id)
    selection = {
        "kind": args.kind,
        "provider": args.provider,
        "status": args.status,
        "customerId": args.customer_id,
        "dueAfter": parse_datetime("dueAfter", args.due_after) if args.due_after else None,
        "dueBefore": parse_datetime("dueBefore", args.due_before) if args.due_before else None,
        "query": args.query,
    }
    data: dict[str, object] = {
        "action": args.bulk_command,
        "selection": {key: value for key, value in selection.items() if value is not None},
        "dryRun": args.dry_run,
        "reason": getattr(args, "reason", None),
    }
    if args.bulk_command == BulkAction.RESCHEDULE:
        data["wishDate"] = parse_datetime("wishDate", args.wish_date)
    if args.bulk_command == BulkAction.RESOLVE:
        data["resolveAction"] = ResolveAction.RETRY if args.retry else ResolveAction.MARK_HANDLED
    request = parse_bulk_request(
        {key: value for key, value in data.items() if value is not None}, datetime.now(UTC)
    )
    return lambda client: _operate(client, settings, request, yes=args.yes, as_json=args.json)


async def _operate(
    client: Client,
    settings: OrchestratorSettings,
    request: BulkRequest,
    *,
    yes: bool,
    as_json: bool,
) -> int:
    query = request.selection.visibility_query(settings.task_queue)
    try:
        count = await bulk.count_selection(client, query)
    except bulk.SelectionRejected as rejected:
        print(f"refused: Temporal cannot run the selection: {rejected}", file=sys.stderr)
        return EXIT_FAILED
    if count == 0:
        print(f"no running saga matches ({query}); nothing done", file=sys.stderr)
        return EXIT_OK
    what = f"{request.action} {count} saga(s)" + (" (dry run)" if request.dry_run else "")
    print(f"{count} running saga(s) match: {query}", file=sys.stderr)
    if not request.dry_run and not yes and not _confirmed(what, count):
        return EXIT_FAILED
    try:
        started = await bulk.start_bulk(client, request, settings)
    except bulk.BulkOperationRunning as running:
        print(f"refused: {running}", file=sys.stderr)
        return EXIT_FAILED
    print(f"bulk operation {started.operation_id}: {what}", file=sys.stderr)
    report = await _follow(client, settings, started.operation_id)
    _print_report(report, as_json=as_json)
    return (
        EXIT_OK
        if report.state == "done" and not report.counts.get(SagaOutcome.FAILED)
        else EXIT_FAILED
    )


def _confirmed(what: str, count: int) -> bool:
    if not sys.stdin.isatty():
        if count > CONFIRM_ABOVE:
            print(
                f"refused: {what} without --yes; over {CONFIRM_ABOVE} sagas, a shell that "
                "cannot answer must confirm with --yes",
                file=sys.stderr,
            )
            return False
        return True
    answer = input(f"{what}? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        print("not confirmed; nothing done", file=sys.stderr)
        return False
    return True


async def _follow(
    client: Client, settings: OrchestratorSettings, operation_id: str
) -> BulkProgress:
    """The operation's progress as a bar (stderr) until it ends; its final report."""
    handle = await bulk.operation_handle(client, settings, operation_id)
    result = asyncio.ensure_future(handle.result())
    while not result.done():
        try:
            progress = await bulk.progress_of(client, settings, operation_id)
        except Exception:  # it continued as new or ended between two looks
            progress = None
        if progress is not None:
            _draw(progress, sys.stderr)
        await asyncio.wait([result], timeout=PROGRESS_EVERY)
    report = await bulk.progress_of(client, settings, operation_id)
    _draw(report, sys.stderr, final=True)
    return report


def _draw(progress: BulkProgress, out: TextIO, *, final: bool = False) -> None:
    total = max(progress.selected, progress.processed, 1)
    done = int(30 * progress.processed / total)
    counts = ", ".join(f"{n} {outcome.value}" for outcome, n in sorted(progress.counts.items()))
    line = f"[{'#' * done}{'.' * (30 - done)}] {progress.processed}/{total} {counts}"
    if out.isatty():
        out.write(f"\r{line}" + ("\n" if final else ""))
    elif final:
        out.write(line + "\n")
    out.flush()


async def _show(
    client: Client, settings: OrchestratorSettings, operation_id: str, *, as_json: bool
) -> int:
    try:
        report = await bulk.progress_of(client, settings, operation_id)
    except bulk.BulkOperationNotFound as missing:
        print(f"refused: {missing}", file=sys.stderr)
        return EXIT_FAILED
    _print_report(report, as_json=as_json)
    return EXIT_OK


async def _stop(client: Client, settings: OrchestratorSettings, operation_id: str) -> int:
    try:
        await bulk.stop(client, settings, operation_id)
    except bulk.BulkOperationNotFound as missing:
        print(f"refused: {missing}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{operation_id}: stopping; the batch in flight finishes, nothing after it is sent")
    return EXIT_OK


def _print_report(report: BulkProgress, *, as_json: bool) -> None:
    if as_json:
        output.print_json(report.model_dump(mode="json", by_alias=True))
        return
    print(
        f"bulk operation {report.operation_id}: {report.action}"
        f"{' (dry run)' if report.dry_run else ''} {report.state}, "
        f"{report.processed} of {report.selected} selected"
    )
    for outcome, count in sorted(report.counts.items()):
        print(f"  {outcome.value}: {count}")
    for detail in report.details:
        print(f"  {detail.workflow_id}  {detail.outcome.value}  {detail.detail}")
    if report.pace_per_second:
        print(f"  paced at {report.pace_per_second:g} sagas/s (its lanes' limits)")


def prepare_upcoming(
    args: argparse.Namespace, settings: OrchestratorSettings
) -> Callable[[Client], Awaitable[int]]:
    asked = forecast.ForecastRequest.of(days=args.days, by=args.by, provider=args.provider)

    async def show(client: Client) -> int:
        due = await forecast.forecast(client, settings.task_queue, asked)
        if args.json:
            output.print_json(due.model_dump(mode="json", by_alias=True))
        else:
            output.print_forecast(due)
        return EXIT_OK

    return show
