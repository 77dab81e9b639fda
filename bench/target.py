"""Where a benchmark runs: a Temporal server, the sandbox, the product's worker and
the bare worker (:mod:`bench.bare`), all on this machine.

``dev`` (the default, ``make bench``): ``make run``'s dev server (SQLite), started
privately on free ports by the reliability suite's :class:`reliability.harness.Stack`
with the sandbox in memory (no state file: it would rewrite a file that grows with
every saga after each request, a cost of the test double, not of the product).

``cluster`` (``make bench TARGET=cluster``): not wired yet. The PostgreSQL-backed
cluster (``starter.cluster.ClusterStack``) has landed, but a :class:`Bench` on it needs
its Temporal address, its sandbox's URL, the product workers' processes (restarted
with ``CANCEL_WORKER_*`` for the before/after) and a bare worker pointed at it;
asking for it says so instead of measuring something else.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client

from reliability.harness import ManagedProcess, Stack

TARGETS = ("dev", "cluster")

#: ``CANCEL_WORKER_*`` that restore the Temporal SDK's own defaults (the "before").
SDK_DEFAULTS: dict[str, str] = {
    "CANCEL_WORKER_MAX_CACHED_WORKFLOWS": "1000",
    "CANCEL_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS": "",
    "CANCEL_WORKER_MAX_CONCURRENT_ACTIVITIES": "",
    "CANCEL_WORKER_WORKFLOW_TASK_POLLERS": "",
    "CANCEL_WORKER_ACTIVITY_TASK_POLLERS": "",
    "CANCEL_WORKER_SHARE_WORKFLOW_MODULES": "false",
}


@dataclass
class Bench:
    """One running target: the stack, its bare worker and a client."""

    stack: Stack
    bare_worker: ManagedProcess
    client: Client
    target: str

    @property
    def pids(self) -> dict[str, int]:
        """The processes whose memory and CPU the benchmarks sample."""
        named = {
            "worker": self.stack.worker,
            "bare worker": self.bare_worker,
            "server": self.stack.server,
            "sandbox": self.stack.sandbox,
            "api": self.stack.api,
        }
        return {
            name: process.process.pid
            for name, process in named.items()
            if process.process is not None and process.alive
        }

    def reset_sandbox(self) -> None:
        """Forget every provider object and the call log (settings stay): the sandbox
        scans all its activations on every request, so each phase starts equal."""
        with self.stack.admin() as admin:
            admin.reset()

    def check_alive(self) -> None:
        """Raise if a process died by itself (its log says why)."""
        dead = [*self.stack.died()]
        bare_worker = self.bare_worker
        if bare_worker.process is not None and not bare_worker.alive:
            dead += [] if bare_worker.down_on_purpose else [bare_worker]
        if dead:
            names = ", ".join(f"{process.name} (log {process.log})" for process in dead)
            raise RuntimeError(f"died during the benchmark: {names}")

    async def restart_worker(self, env: dict[str, str]) -> None:
        """The product's worker again, with ``env`` over its environment (tuning)."""
        self.stack.worker.stop()
        base = {
            k: v for k, v in self.stack.worker.env.items() if not k.startswith("CANCEL_WORKER_")
        }
        # An empty value means "unset": the setting's default (the SDK's).
        self.stack.worker.env = {**base, **{k: v for k, v in env.items() if v}}
        await self.stack.worker.start()


@contextlib.asynccontextmanager
async def running(
    target: str = "dev", *, api: bool = False, worker_env: dict[str, str] | None = None
) -> AsyncIterator[Bench]:
    """Start ``target``; everything is stopped when the block ends."""
    if target == "cluster":
        raise NotImplementedError(
            "TARGET=cluster is not wired yet: bench/target.py must run the benchmarks on "
            "starter.cluster.ClusterStack (its address, sandbox, workers, a bare worker)"
        )
    if target != "dev":
        raise ValueError(f"unknown target {target!r}; one of {', '.join(TARGETS)}")
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
        stack = Stack(
            Path(workdir),
            provider_timeout_seconds=15.0,
            worker_env={k: v for k, v in (worker_env or {}).items() if v},
            sandbox_state_file=False,
        )
        bare_worker = ManagedProcess(
            "bare worker",
            [sys.executable, "-m", "bench.bare"],
            stack.cli_env,
            stack.workdir / "bare-worker.log",
            graceful=signal.SIGINT,
        )
        try:
            await stack.start(api=api)
            await bare_worker.start()
            client = await stack.client()
            with stack.admin() as admin:
                # Terminations settle the moment they are due: a saga's first poll
                # after its wish date finds DONE, in the product and in the baseline.
                admin.configure(stn_processing_delay_seconds=0.0)
            yield Bench(stack, bare_worker, client, target)
        finally:
            bare_worker.stop()
            stack.stop()
