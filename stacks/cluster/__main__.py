"""``make cluster``: PostgreSQL, Temporal's four services, the Web UI, the sandbox, the
codec server, N workers and the HTTP API, in the foreground, until Ctrl-C.

Environment: ``CLUSTER_WORKERS`` (2), ``CLUSTER_DATA_DIR`` (``.data/cluster``),
``TEMPORAL_NUM_HISTORY_SHARDS`` (4; fixed when the directory is first set up),
ports as in :class:`stacks.cluster.ports.ClusterPorts` (``CLUSTER_POSTGRES_PORT``
5433, ``TEMPORAL_FRONTEND_PORT`` 7233, ... ``TEMPORAL_UI_PORT`` 8233, ``SANDBOX_PORT``,
``CANCEL_API_PORT``, ``CANCEL_CODEC_SERVER_PORT`` as for ``make run``). With
``CANCEL_API_KEYS`` or ``CANCEL_CODEC_SERVER_TOKENS`` set, those are used and no
per-run key or token is made.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from pydantic import ValidationError

from config.codec import CodecConfigurationError, resolve_keys
from config.temporal_cli import TemporalCliUnavailable, find_temporal_cli
from config.temporal_server import TemporalServerUnavailable, ensure_server_binaries
from stacks.banner import banner, codec_banner
from stacks.cluster.ports import ClusterPorts
from stacks.cluster.postgres import PostgresUnavailable, require_postgres
from stacks.cluster.stack import NUM_HISTORY_SHARDS, ClusterStack
from stacks.environment import new_secret
from stacks.ports import refuse_busy_port
from stacks.service import stop_signals


def cluster_lines(stack: ClusterStack, data_dir: Path) -> str:
    """What ``make run``'s banner does not have: the database, the services, N workers."""
    ports = stack.ports
    services = ", ".join(
        f"{name} :{ports.service(name).grpc}"
        for name in ("frontend", "history", "matching", "worker")
    )
    shown = os.path.relpath(data_dir) if data_dir.is_relative_to(Path.cwd()) else str(data_dir)
    lines = (
        f"    PostgreSQL        127.0.0.1:{ports.postgres}  (data: {shown}/postgres; "
        f"role {stack.login.user}, password in {shown}/temporal-password)\n"
        f"    Temporal services {services}  ({stack.num_history_shards} history shards; "
        "config deploy/temporal/cluster.yaml)\n"
        f"    Workers           {len(stack.product_workers)} processes on one task queue\n"
        f"    Logs              {shown}/logs/\n"
    )
    for index, _worker in enumerate(stack.product_workers):
        if ports.worker_metrics:
            lines += (
                f"    Worker {index + 1} metrics  "
                f"http://127.0.0.1:{ports.worker_metrics + index}/metrics\n"
            )
    if ports.api_metrics:
        lines += f"    API metrics       http://127.0.0.1:{ports.api_metrics}/metrics\n"
    timings = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in stack.timings.items())
    return lines + f"    Started in        {sum(stack.timings.values()):.0f} s ({timings})\n"


def main() -> int:
    ports = ClusterPorts.from_env()
    data_dir = Path(os.environ.get("CLUSTER_DATA_DIR", ".data/cluster")).resolve()
    try:
        workers = int(os.environ.get("CLUSTER_WORKERS", "2"))
        shards = int(os.environ.get("TEMPORAL_NUM_HISTORY_SHARDS", str(NUM_HISTORY_SHARDS)))
        if workers < 1 or shards < 1:
            raise ValueError("CLUSTER_WORKERS and TEMPORAL_NUM_HISTORY_SHARDS must be at least 1")
        postgres = require_postgres()
        binaries = ensure_server_binaries(ui=True)
        for port, name in ports.listening():
            refuse_busy_port(port, name)
        # Before anything starts (as in `make run`): production without a key stops here,
        # and a generated dev key exists before the processes that share it start.
        codec_keys = resolve_keys()
        stack = ClusterStack(
            data_dir,
            binaries,
            postgres,
            ports,
            workers=workers,
            num_history_shards=shards,
            api_token=None if os.environ.get("CANCEL_API_KEYS") else new_secret(),
            codec_token=None if os.environ.get("CANCEL_CODEC_SERVER_TOKENS") else new_secret(),
        )
    except (
        PostgresUnavailable,
        TemporalServerUnavailable,
        RuntimeError,
        CodecConfigurationError,
        ValueError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ValidationError as error:
        print(f"error: settings: {error}", file=sys.stderr)
        return 1

    print(f"starting PostgreSQL, Temporal's services and the product in {data_dir}", flush=True)

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # Ctrl-C (or SIGTERM) during start-up: KeyboardInterrupt, and what started is stopped.
    signal.signal(signal.SIGTERM, interrupt)
    try:
        asyncio.run(stack.start())
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        print(f"error: {error}", file=sys.stderr)
        stack.stop()
        return 1
    except KeyboardInterrupt:
        stack.stop()
        return 130

    stop_requested = stop_signals()
    try:
        cli = str(find_temporal_cli() or "temporal")
    except TemporalCliUnavailable:
        cli = "temporal"
    devstack_ports = stack.devstack_ports()
    codec = codec_banner(devstack_ports, stack.codec_token, codec_keys, ui_codec=True, cli=cli)
    lines = cluster_lines(stack, data_dir)
    text = banner(devstack_ports, stack.address, stack.api_token, codec, lines)
    # make run's words, said of this stack.
    text = text.replace("`make run`", "`make cluster`").replace(
        "the UI was started with --ui-codec-endpoint", "the UI server's codec endpoint is"
    )
    print(text, flush=True)

    code = 0
    while not stop_requested():
        died = stack.died()
        if died or not stack.postgres.alive:
            what = ", ".join(p.name for p in died) or "PostgreSQL"
            print(f"error: {what} exited unexpectedly; see {stack.logs}", file=sys.stderr)
            code = 1
            break
        time.sleep(0.5)
    stack.stop(say=True)
    print(f"stopped; saga state is kept in PostgreSQL under {data_dir}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
