"""``cancelctl release status|ramp|promote|rollback|patches`` (README "Releases").

Input is checked before Temporal is asked (exit 2 naming the field and the rule); a
step the deployment cannot take (an unknown version, nothing to roll back to, a release
whose retired patches open runs still need) is exit 1 with the reason.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Coroutine
from enum import StrEnum
from typing import Any

from temporalio.client import Client

from config.deployment import DeploymentSettings
from config.settings import OrchestratorSettings
from starter import patch_uses, releases
from starter.cli import output
from starter.cli.output import EXIT_FAILED, EXIT_OK, Command


class ReleaseCommand(StrEnum):
    STATUS = "status"
    RAMP = "ramp"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    PATCHES = "patches"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> None:
    parser = commands.add_parser(
        name,
        help="releases: the worker deployment's versions; ramp, promote, roll back; patches",
        description="Workers run as versions (build ids) of a Temporal Worker Deployment. "
        "Start the new version's workers beside the old, ramp a share of new runs to it, "
        'promote it, let the old one drain, or roll back (README "Releases").',
    )
    parser.add_argument(
        "--deployment",
        metavar="NAME",
        help="the Worker Deployment (default: CANCEL_DEPLOYMENT_NAME, else "
        "cancellation-orchestrator)",
    )
    actions = parser.add_subparsers(dest="release_command", required=True, metavar="ACTION")
    status = actions.add_parser(
        ReleaseCommand.STATUS,
        help="current and ramping version; each version's state, drainage and open runs",
    )
    status.add_argument("--json", action="store_true")
    ramp = actions.add_parser(
        ReleaseCommand.RAMP, help="send a share of new runs to a version beside the current one"
    )
    ramp.add_argument("build_id", metavar="BUILD_ID")
    ramp.add_argument(
        "--percent", type=float, required=True, metavar="P", help="share of new runs, 0 < P < 100"
    )
    promote = actions.add_parser(
        ReleaseCommand.PROMOTE,
        help="make a version current: new runs and every saga go to it; the old one drains",
    )
    promote.add_argument("build_id", metavar="BUILD_ID")
    rollback = actions.add_parser(
        ReleaseCommand.ROLLBACK,
        help="end a ramp; without one, make the version current before current again",
    )
    rollback.add_argument(
        "--to",
        metavar="BUILD_ID",
        help="the version to make current (default: the one most recently current or "
        "ramping before)",
    )
    patches = actions.add_parser(
        ReleaseCommand.PATCHES,
        help="for each patch: runs that could still take its old path (from visibility)",
    )
    patches.add_argument("--json", action="store_true")


def prepare(args: argparse.Namespace, settings: OrchestratorSettings) -> Command:
    """Input checked here (``InvalidRequest``: exit 2), before connecting."""
    name = args.deployment if args.deployment is not None else DeploymentSettings().name
    releases.check_deployment_name(name)
    queue = settings.task_queue
    match args.release_command:
        case ReleaseCommand.STATUS:
            return lambda client: _status(client, name, as_json=args.json)
        case ReleaseCommand.RAMP:
            releases.check_build_id(args.build_id, "BUILD_ID")
            releases.check_percentage(args.percent)
            return lambda client: _step(
                client, queue, releases.ramp(client, name, args.build_id, args.percent)
            )
        case ReleaseCommand.PROMOTE:
            releases.check_build_id(args.build_id, "BUILD_ID")
            return lambda client: _step(
                client, queue, releases.promote(client, name, args.build_id)
            )
        case ReleaseCommand.ROLLBACK:
            if args.to is not None:
                releases.check_build_id(args.to, "--to")
            return lambda client: _rollback(client, name, args.to)
        case ReleaseCommand.PATCHES:
            return lambda client: _patches(client, queue, as_json=args.json)
    raise AssertionError(f"no runner for release {args.release_command!r}")


async def _status(client: Client, name: str, *, as_json: bool) -> int:
    view = await releases.describe(client, name)
    if view is None:
        print(f"refused: no worker of deployment {name!r} has polled yet", file=sys.stderr)
        return EXIT_FAILED
    if as_json:
        output.print_json(view.model_dump(mode="json", by_alias=True))
    else:
        _print_deployment(view)
    return EXIT_OK


async def _step(
    client: Client, queue: str, step: Coroutine[Any, Any, releases.DeploymentView]
) -> int:
    """A ramp or promote: refused while open runs need a patch this release retired."""
    blocking = await patch_uses.blocking_retired(client, queue)
    if blocking:
        step.close()  # never started
        for use in blocking:
            print(f"refused: {use.patch}: {use.verdict}", file=sys.stderr)
        return EXIT_FAILED
    try:
        view = await step
    except releases.ReleaseRefused as refused:
        print(f"refused: {refused}", file=sys.stderr)
        return EXIT_FAILED
    _print_deployment(view)
    return EXIT_OK


async def _rollback(client: Client, name: str, to: str | None) -> int:
    try:
        done, view = await releases.rollback(client, name, to)
    except releases.ReleaseRefused as refused:
        print(f"refused: {refused}", file=sys.stderr)
        return EXIT_FAILED
    print(done)
    _print_deployment(view)
    return EXIT_OK


async def _patches(client: Client, queue: str, *, as_json: bool) -> int:
    uses = await patch_uses.patch_uses(client, queue)
    if as_json:
        output.print_json([use.model_dump(mode="json", by_alias=True) for use in uses])
        return EXIT_OK
    for use in uses:
        print(f"{use.patch:<38} {use.verdict}")
    return EXIT_OK


def _print_deployment(view: releases.DeploymentView) -> None:
    ramp = (
        f"; ramping {view.ramping_build_id} ({view.ramping_percentage:g}% of new runs)"
        if view.ramping_build_id
        else ""
    )
    print(f"deployment {view.name}: current {view.current_build_id or '(none)'}{ramp}")
    for version in view.versions:
        drainage = f", {version.drainage}" if version.drainage else ""
        print(
            f"  {version.build_id:<32} {version.status}{drainage}  open runs: {version.open_runs}"
        )
