"""The process layer every stack runs on (``stacks/``), without a stack: one
:class:`~stacks.service.Service` (start-up, readiness, stop, kill) on small real
processes, and :func:`~stacks.environment.environment` (each process's environment)."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from config.settings import ApiScope
from sandbox.settings import SandboxSettings
from stacks.environment import Role, Wiring, environment
from stacks.ports import free_port, port_is_open, refuse_busy_port
from stacks.product import ProductProcesses
from stacks.service import Service, StartupFailed, descendants, kill_group
from tests.helpers import eventually_sync

PYTHON = sys.executable


def python(name: str, script: str, log: Path, **options: Any) -> Service:
    return Service(name, [PYTHON, "-c", script], dict(os.environ), log, **options)


# -- Service -----------------------------------------------------------------------------


def test_a_service_is_ready_once_its_port_accepts_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    server = Service(
        "web",
        [PYTHON, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        dict(os.environ),
        tmp_path / "web.log",
        port=port,
        graceful=signal.SIGINT,
    )
    try:
        server.start()
        assert port_is_open(port) and server.alive and server.starts == 1
        with pytest.raises(RuntimeError, match=rf"port {port} for web is already in use"):
            refuse_busy_port(port, "web")
    finally:
        code = server.stop()

    # http.server exits 0 on SIGINT: a stop that is not a kill.
    assert code == 0
    assert not server.alive and not server.died and server.down_on_purpose
    assert not port_is_open(port)


def test_a_process_that_exits_during_start_up_is_named_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "broken.log"
    broken = python(
        "broken", "import sys; print('no key configured'); sys.exit(3)", log, port=free_port()
    )

    with pytest.raises(StartupFailed) as failed:
        broken.start()

    message = str(failed.value)
    assert "broken exited with code 3 during start-up" in message
    assert str(log) in message and "no key configured" in message


def test_a_process_never_ready_fails_the_start_after_its_deadline(tmp_path: Path) -> None:
    slow = python(
        "slow",
        "import time; time.sleep(60)",
        tmp_path / "slow.log",
        ready_line="polling",
        startup_seconds=1.0,
    )
    try:
        with pytest.raises(StartupFailed, match="slow was not ready within 1s"):
            slow.start()
        # It is left for its supervisor to stop.
        assert slow.alive
    finally:
        slow.stop()


def test_the_ready_line_is_looked_for_in_what_this_start_wrote(tmp_path: Path) -> None:
    script = (
        "import time\n"
        "print('warming up', flush=True); time.sleep(0.3)\n"
        "print('Worker polling task queue', flush=True); time.sleep(60)\n"
    )
    worker = python("worker", script, tmp_path / "worker.log", ready_line="Worker polling")
    try:
        worker.start()
        assert "warming up" in worker.output() and "Worker polling" in worker.output()
        worker.kill()
        assert worker.down_on_purpose and not worker.died
        worker.start()
        # The log keeps both starts; this start's output only its own.
        assert worker.starts == 2
        assert worker.output().count("Worker polling") == 1
        assert (tmp_path / "worker.log").read_text().count("Worker polling") == 2
    finally:
        worker.stop()


def test_a_process_that_exits_by_itself_has_died(tmp_path: Path) -> None:
    short = python("short", "pass", tmp_path / "short.log")
    short.start()

    eventually_sync(lambda: _assert(short.died), within=10)
    assert short.stop() == 0 and not short.died


def test_a_hung_stack_is_killed_with_the_children_of_its_own_sessions(tmp_path: Path) -> None:
    # A supervisor that ignores SIGINT, with a child in a session of its own (as
    # devstack's); both hang until killed.
    script = (
        "import signal, subprocess, sys\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import signal; signal.pause()'],"
        " start_new_session=True)\n"
        "print('child', child.pid, flush=True)\n"
        "while True: signal.pause()\n"
    )
    hung = python(
        "hung stack",
        script,
        tmp_path / "hung.log",
        ready_line="child",
        graceful=signal.SIGINT,
        stop_seconds=1.0,
    )
    hung.start()
    assert hung.process is not None
    child = int(hung.output().split()[-1])
    try:
        assert child in descendants(hung.process.pid)

        # SIGINT is ignored: the stop ends in a kill of both sessions.
        assert hung.stop() is None
        assert not hung.alive

        def child_gone() -> None:
            assert not Path(f"/proc/{child}").exists() or _zombie(child), f"{child} still runs"

        eventually_sync(child_gone, within=10)
    finally:
        kill_group(child)
        hung.kill()


def _assert(condition: bool) -> None:
    assert condition


def _zombie(pid: int) -> bool:
    """Killed but not yet reaped by its (already dead) parent's reaper."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


# -- environment -------------------------------------------------------------------------

WIRING = Wiring(
    temporal_address="127.0.0.1:17233",
    sandbox_url="http://127.0.0.1:18099",
    task_queue="q-stack",
    api_port=18080,
    api_token="dev-token-0123456789abcdef",
    codec_port=18089,
    codec_token="per-run-token-0123456789",
    ui_port=18233,
    log_format="pretty",
)


def test_every_process_finds_temporal_and_the_providers_on_the_sandbox() -> None:
    organization = SandboxSettings().rebilly_organization_id
    for role in Role:
        env = environment(WIRING, role, base={"KEEP": "1"})

        assert env["KEEP"] == "1"
        assert env["TEMPORAL_ADDRESS"] == "127.0.0.1:17233"
        assert env["TEMPORAL_NAMESPACE"] == "default"
        assert env["CANCEL_TASK_QUEUE"] == "q-stack"
        assert env["STN_BASE_URL"] == "http://127.0.0.1:18099/stn"
        assert env["REBILLY_BASE_URL"] == (
            f"http://127.0.0.1:18099/rebilly/organizations/{organization}"
        )
        assert env["AIRALO_BASE_URL"] == "http://127.0.0.1:18099/airalo"
        assert env["AIRALO_WEBHOOK_URL"] == "http://127.0.0.1:18080/v1/webhooks/airalo"
        assert env["CANCEL_LOG_FORMAT"] == "pretty"


def test_the_stack_wires_over_the_callers_environment_but_not_its_log_format() -> None:
    base = {
        "TEMPORAL_ADDRESS": "elsewhere:7233",
        "CANCEL_API_REBILLY_WEBHOOK_PASSWORD": "someone-elses",
        "CANCEL_LOG_FORMAT": "json",
    }

    api = environment(WIRING, Role.API, base=base)

    assert api["TEMPORAL_ADDRESS"] == "127.0.0.1:17233"
    assert api["CANCEL_API_REBILLY_WEBHOOK_PASSWORD"] == WIRING.webhook_password
    assert api["CANCEL_LOG_FORMAT"] == "json"


def test_the_sandbox_and_the_api_agree_on_each_webhook() -> None:
    sandbox = environment(WIRING, Role.SANDBOX, base={})
    api = environment(WIRING, Role.API, base={})
    hooks = "http://127.0.0.1:18080/v1/webhooks"

    assert sandbox["SANDBOX_AIRALO_OPTED_IN_WEBHOOK_URL"] == f"{hooks}/airalo"
    assert sandbox["SANDBOX_REBILLY_WEBHOOK_URL"] == f"{hooks}/rebilly"
    assert api["CANCEL_API_HOST"] == "127.0.0.1" and api["CANCEL_API_PORT"] == "18080"
    assert api["CANCEL_API_AIRALO_WEBHOOK_SECRET"] == SandboxSettings().airalo_client_secret
    for field in ("USERNAME", "PASSWORD"):
        assert (
            api[f"CANCEL_API_REBILLY_WEBHOOK_{field}"]
            == (sandbox[f"SANDBOX_REBILLY_WEBHOOK_{field}"])
        )
    # Each stack its own password.
    assert Wiring("a:1", "http://b:2").webhook_password != WIRING.webhook_password


def test_the_api_gets_the_stacks_dev_key_with_every_scope_or_the_callers_keys() -> None:
    (key,) = json.loads(environment(WIRING, Role.API, base={})["CANCEL_API_KEYS"])
    theirs = Wiring("a:1", "http://b:2", api_port=1, api_token=None)
    kept = environment(theirs, Role.API, base={"CANCEL_API_KEYS": "[]"})

    assert key["token"] == "dev-token-0123456789abcdef"
    assert set(key["scopes"]) == {scope.value for scope in ApiScope}
    assert kept["CANCEL_API_KEYS"] == "[]"
    assert "CANCEL_API_KEYS" not in environment(WIRING, Role.WORKER, base={})


def test_metrics_and_provider_timeouts_go_to_the_process_that_has_them() -> None:
    worker = environment(
        WIRING, Role.WORKER, base={}, metrics_address="", provider_timeout_seconds=5.0
    )
    api = environment(WIRING, Role.API, base={}, metrics_address="127.0.0.1:19465")

    assert worker["CANCEL_METRICS_WORKER_ADDRESS"] == ""
    assert {worker[f"{p}_TIMEOUT_SECONDS"] for p in ("STN", "REBILLY", "AIRALO")} == {"5.0"}
    assert api["CANCEL_METRICS_API_ADDRESS"] == "127.0.0.1:19465"
    with pytest.raises(ValueError, match="sandbox serves no metrics"):
        environment(WIRING, Role.SANDBOX, metrics_address="127.0.0.1:1")


def test_a_stack_without_an_api_sends_no_webhooks_and_starts_none() -> None:
    headless = Wiring("127.0.0.1:17233", "http://127.0.0.1:18099")
    product = ProductProcesses(headless, logs=None, state_file=None, workers=2)

    sandbox = environment(headless, Role.SANDBOX, base={})
    assert "AIRALO_WEBHOOK_URL" not in sandbox
    assert not any(name.startswith("SANDBOX_") for name in sandbox)
    assert [p.name for p in product.in_start_order()] == ["sandbox", "worker 1", "worker 2"]
    with pytest.raises(ValueError, match="serves no HTTP API"):
        environment(headless, Role.API)
