"""Running one parsed cancelctl command: validate first, then connect, then act.

Input is validated before connecting, so bad input is reported (exit 2) even with
Temporal down, and nothing is ever started from a request with a broken rule.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable

from temporalio.client import Client, WorkflowUpdateFailedError

from config.codec import CodecConfigurationError
from config.settings import OrchestratorSettings
from config.temporal import connect, connect_config
from domain.churn import ResolveAction
from domain.common import OperatorRequestKind, SagaQuery
from starter import lanes, sagas
from starter.cli import output, release, subscriptions
from starter.cli.bulk import prepare_bulk, prepare_upcoming
from starter.cli.output import EXIT_FAILED, EXIT_OK, Command
from starter.cli.parser import ControlCommand, LaneCommand
from starter.kind_flags import parse_datetime
from starter.kinds import KINDS

#: What a validated command does once connected; returns the exit code.


class TemporalUnreachable(Exception):
    pass


async def run(args: argparse.Namespace) -> int:
    command = prepare(args, OrchestratorSettings())
    return await command(await _connect())


def prepare(args: argparse.Namespace, settings: OrchestratorSettings) -> Command:
    """Validate the command's input (``InvalidRequest``) and return what to run."""
    workflow_id: str = getattr(args, "workflow_id", "")
    spec = KINDS.by_command(args.command)
    if spec is not None:  # a saga kind's sub-command: its request is read before connecting
        request = spec.cli.read(args)
        return lambda client: _start(sagas.start(client, spec.kind, request, settings))
    match args.command:
        case OperatorRequestKind.REVOKE:
            # Each request is validated here, before connecting.
            revoke = sagas.revoke_request(args.reason)
            return lambda client: _ask(client, workflow_id, revoke, settings)
        case OperatorRequestKind.RESCHEDULE:
            reschedule = sagas.reschedule_request(parse_datetime("wishDate", args.wish_date))
            return lambda client: _ask(client, workflow_id, reschedule, settings)
        case OperatorRequestKind.CONFIRM:
            return lambda client: _ask(client, workflow_id, sagas.confirm_request(), settings)
        case OperatorRequestKind.RESOLVE:
            action = ResolveAction.RETRY if args.retry else ResolveAction.MARK_HANDLED
            resolve = sagas.resolve_request(action, args.note)
            return lambda client: _ask(client, workflow_id, resolve, settings)
        case SagaQuery.STATUS:
            within = settings.operator_wait_seconds
            return lambda client: _status(client, workflow_id, within, as_json=args.json)
        case ControlCommand.CANCEL:
            return lambda client: _cancel(client, workflow_id, settings)
        case ControlCommand.LANES:
            return _lane_command(args, settings)
        case ControlCommand.BULK:
            return prepare_bulk(args, settings)
        case ControlCommand.UPCOMING:
            return prepare_upcoming(args, settings)
        case ControlCommand.SUBSCRIPTIONS:
            return subscriptions.prepare(args, settings)
        case ControlCommand.RELEASE:
            return release.prepare(args, settings)
        case ControlCommand.LIST:
            sagas.list_query(args.status, args.customer_id)  # refuses a bad filter early
            sagas.check_list_limit(args.limit)
            return lambda client: _list(client, args.status, args.customer_id, args.limit)
    raise AssertionError(f"no runner for command {args.command!r}")


async def _connect() -> Client:
    try:
        return await connect()
    except CodecConfigurationError:
        raise  # a configuration error, said as such (not "cannot reach Temporal")
    except Exception as error:  # the SDK raises plain RuntimeError on connect failure
        target = connect_config().get("target_host")
        raise TemporalUnreachable(f"cannot reach Temporal at {target}: {error}") from error


async def _start(starting: Awaitable[sagas.StartedSaga]) -> int:
    started = await starting
    print(started.workflow_id)
    if started.already_running:
        print("already running: attached to the existing saga", file=sys.stderr)
    elif started.already_completed:
        print(
            "already completed: this saga carried the request out; nothing started", file=sys.stderr
        )
    return EXIT_OK


async def _ask(
    client: Client, workflow_id: str, request: sagas.OperatorRequest, settings: OrchestratorSettings
) -> int:
    """Send an operator request (a saga update) and wait for the saga's answer at most
    ``CANCEL_OPERATOR_WAIT_SECONDS``. A refusal is exit 1; no answer in time is exit 0
    with how to follow it (the request was sent)."""
    within = settings.operator_wait_seconds
    try:
        answer = await sagas.ask(client, workflow_id, request, within=within)
    except WorkflowUpdateFailedError as error:
        cause = error.cause
        print(f"refused: {cause.message if hasattr(cause, 'message') else cause}", file=sys.stderr)
        return EXIT_FAILED
    except (sagas.SagaNotFound, sagas.SagaClosed) as nothing:
        print(f"refused: {nothing}", file=sys.stderr)
        return EXIT_FAILED
    if isinstance(answer, sagas.RequestPending):
        print(f"{workflow_id}: {request.kind} {answer.stage.value}")
        print(output.pending_request(answer, within), file=sys.stderr)
        return EXIT_OK
    print(f"{answer.get('workflowId')}: {answer.get('phase')}")
    return EXIT_OK


async def _status(client: Client, workflow_id: str, within: float, *, as_json: bool) -> int:
    try:
        state = await sagas.saga_status(client, workflow_id, within=within)
    except sagas.SagaBusy as busy:
        print(f"error: {busy}", file=sys.stderr)
        return EXIT_FAILED
    if as_json:
        output.print_json(state)
    else:
        output.print_status(state)
    return EXIT_OK


async def _cancel(client: Client, workflow_id: str, settings: OrchestratorSettings) -> int:
    try:
        await sagas.cancel(client, workflow_id, within=settings.operator_wait_seconds)
    except (sagas.SagaNotFound, sagas.SagaClosed) as nothing:
        print(f"refused: {nothing}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{workflow_id}: cancellation requested; the saga compensates and stops")
    return EXIT_OK


async def _list(client: Client, phase: str | None, customer_id: str | None, limit: int) -> int:
    output.print_listing(await sagas.list_sagas(client, phase, customer_id, limit))
    return EXIT_OK


def _lane_command(args: argparse.Namespace, settings: OrchestratorSettings) -> Command:
    """``cancelctl lanes [set|reset]``: input checked here, before connecting."""
    queue = settings.task_queue
    if args.lane_command is None:
        return lambda client: _show_lanes(client, queue, as_json=args.json)
    lanes.check_provider(args.provider)
    limit = None
    if args.lane_command == LaneCommand.SET:
        limit = args.max_calls_per_second
        lanes.check_limit(limit)
    reason = getattr(args, "reason", None)

    async def change(client: Client) -> int:
        lane = await lanes.set_lane_limit(client, queue, args.provider, limit, reason)
        output.print_lanes([lane])
        return EXIT_OK

    return change


async def _show_lanes(client: Client, task_queue: str, *, as_json: bool) -> int:
    found = await lanes.describe_lanes(client, task_queue)
    if as_json:
        output.print_json([lane.model_dump(mode="json", by_alias=True) for lane in found])
    else:
        output.print_lanes(found)
    return EXIT_OK
