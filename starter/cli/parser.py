"""cancelctl's argument parser: a sub-command to start each saga kind, and the operator's."""

from __future__ import annotations

import argparse
from enum import StrEnum

from domain.common import OperatorRequestKind, SagaQuery
from starter.cli import release, subscriptions
from starter.cli.bulk import add_bulk, add_upcoming
from starter.kinds import KINDS

EPILOG = """\
Temporal connection: TEMPORAL_ADDRESS (default localhost:7233), TEMPORAL_NAMESPACE,
TEMPORAL_API_KEY, TLS settings and profiles as in Temporal's environment configuration.
Task queue: CANCEL_TASK_QUEUE (default "cancellations").

Exit codes: 0 ok, 1 refused or unreachable, 2 invalid input (nothing started).
"""


class ControlCommand(StrEnum):
    """Sub-commands that act on workflows without being a saga update or query."""

    CANCEL = "cancel"
    LIST = "list"
    LANES = "lanes"
    BULK = "bulk"
    UPCOMING = "upcoming"
    SUBSCRIPTIONS = "subscriptions"
    RELEASE = "release"


class LaneCommand(StrEnum):
    """``cancelctl lanes`` sub-commands (without one: show every lane)."""

    SET = "set"
    RESET = "reset"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cancelctl",
        description="Start, inspect and steer durable cancellation sagas.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_starts(commands)
    _add_steering(commands)
    _add_workflow_controls(commands)
    return parser


def _add_starts(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """One sub-command per saga kind (``starter.kinds``), with the flags of its entry."""
    for spec in KINDS:
        start = commands.add_parser(
            spec.cli.name, help=spec.cli.help, description=spec.cli.description
        )
        spec.cli.add_flags(start)


def _add_steering(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The operator requests (saga updates) and the status query, named as the saga names them."""
    confirm = commands.add_parser(
        OperatorRequestKind.CONFIRM,
        help="confirm a draft order cancellation (created with --draft)",
    )
    confirm.add_argument("workflow_id", metavar="ID")
    resolve = commands.add_parser(
        OperatorRequestKind.RESOLVE,
        help="answer a saga in NEEDS_ATTENTION: retry, or mark it handled",
    )
    resolve.add_argument("workflow_id", metavar="ID")
    how = resolve.add_mutually_exclusive_group(required=True)
    how.add_argument("--retry", action="store_true", help="retry what the saga still owes")
    how.add_argument(
        "--mark-handled", action="store_true", help="an operator fixed it by hand; close it"
    )
    resolve.add_argument("--note", metavar="TEXT", help="what was done (kept in the audit trail)")

    status = commands.add_parser(SagaQuery.STATUS, help="show a saga's state and audit trail")
    status.add_argument("workflow_id", metavar="ID")
    status.add_argument("--json", action="store_true", help="print the full status as JSON")

    revoke = commands.add_parser(
        OperatorRequestKind.REVOKE, help="revoke a saga before its provider executed it"
    )
    revoke.add_argument("workflow_id", metavar="ID")
    revoke.add_argument("--reason", metavar="TEXT", help="why (sent to the provider as a note)")

    reschedule = commands.add_parser(
        OperatorRequestKind.RESCHEDULE, help="move a saga to a new wish date"
    )
    reschedule.add_argument("workflow_id", metavar="ID")
    reschedule.add_argument(
        "--wish-date", metavar="ISO", required=True, help="new date, ISO 8601 with offset"
    )


def _add_workflow_controls(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cancel = commands.add_parser(
        ControlCommand.CANCEL,
        help="cancel the workflow: the saga undoes what it did, then stops",
    )
    cancel.add_argument("workflow_id", metavar="ID")

    listing = commands.add_parser(ControlCommand.LIST, help="list sagas, newest first")
    listing.add_argument("--status", metavar="S", help="phase, e.g. WAITING, COMPLETED, REVOKED")
    listing.add_argument("--customer-id", metavar="ID")
    listing.add_argument("--limit", type=int, default=100, metavar="N")
    _add_lanes(commands)
    add_bulk(commands)
    add_upcoming(commands)
    subscriptions.add_parser(commands, ControlCommand.SUBSCRIPTIONS)
    release.add_parser(commands, ControlCommand.RELEASE)


def _add_lanes(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lanes = commands.add_parser(
        ControlCommand.LANES,
        help="show each provider lane (limit, backlog, oldest waiting call), or set its limit",
        description="Each provider's calls run on a lane of their own (the task queue "
        "<CANCEL_TASK_QUEUE>-<provider>), at most at the lane's limit for all workers "
        "together. Without a sub-command: every lane, its limit and where it comes from, "
        "its backlog and how long its oldest call has waited.",
    )
    lanes.add_argument("--json", action="store_true", help="print the lanes as JSON")
    actions = lanes.add_subparsers(dest="lane_command", metavar="ACTION")
    change = actions.add_parser(
        LaneCommand.SET,
        help="set a lane's limit for every worker at once (no restart)",
        description="Overrides the workers' CANCEL_<PROVIDER>_MAX_CALLS_PER_SECOND until "
        "`cancelctl lanes reset`.",
    )
    change.add_argument("provider", metavar="PROVIDER", help="stn, rebilly or airalo")
    change.add_argument(
        "--max-calls-per-second", type=float, required=True, metavar="N", help="above 0"
    )
    change.add_argument("--reason", metavar="TEXT", help="kept with the setting in Temporal")
    reset = actions.add_parser(
        LaneCommand.RESET,
        help="remove a limit set with `lanes set`: the workers' own setting applies again",
    )
    reset.add_argument("provider", metavar="PROVIDER", help="stn, rebilly or airalo")
