"""The browser test's own machinery, without a browser or a stack: a missing browser
fails (never skips) and names the installer; a hung stack is killed with everything
it started, including children in sessions of their own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser import web_ui
from tests.browser.devstack_process import Banner, descendants, kill_group
from tests.helpers import eventually_sync

_BANNER = """
  cancellation-orchestrator is running
    Temporal Web UI   http://127.0.0.1:18233/namespaces/default/workflows
    Temporal          127.0.0.1:17233
    HTTP API          http://127.0.0.1:18080  (docs: http://127.0.0.1:18080/docs)
    API dev key       dev-key-0123456789abcdef  (all scopes; a new one each `make run`)
"""
_CODEC = """
    Codec server      http://127.0.0.1:18089
    Codec token       codec-token-0123456789  (a new one each `make run`)
"""


def test_a_missing_chromium_fails_the_test_and_names_the_installer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(web_ui, "CHROMIUM", tmp_path / "chromium")
    with pytest.raises(pytest.fail.Exception, match=r"chromium.*run tests/browser/install\.sh"):
        web_ui.require_browser()


def test_a_missing_playwright_fails_the_test_and_names_the_installer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(web_ui, "PLAYWRIGHT", tmp_path / "package.json")
    with pytest.raises(pytest.fail.Exception, match=r"playwright-core.*install\.sh"):
        web_ui.require_browser()


def test_the_banner_gives_what_a_person_uses() -> None:
    banner = Banner.parse(_BANNER + _CODEC)
    assert banner == Banner(
        ui_url="http://127.0.0.1:18233",
        api_url="http://127.0.0.1:18080",
        api_key="dev-key-0123456789abcdef",
        codec_endpoint="http://127.0.0.1:18089",
        codec_token="codec-token-0123456789",
    )
    assert Banner.parse(_BANNER).codec_endpoint is None
    with pytest.raises(AssertionError, match="API dev key"):
        Banner.parse(_BANNER.replace("API dev key", "API keys   "))


def test_a_hung_stack_is_killed_with_the_children_of_its_own_sessions() -> None:
    # A parent that ignores SIGINT, with a child in a session of its own (as devstack's);
    # both hang until killed.
    script = (
        "import signal, subprocess, sys\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import signal; signal.pause()'],"
        " start_new_session=True)\n"
        "print(child.pid, flush=True)\n"
        "while True: signal.pause()\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        assert child in descendants(parent.pid)
        for pid in (parent.pid, child):
            kill_group(pid)
        parent.wait(timeout=10)

        def child_gone() -> None:
            assert not Path(f"/proc/{child}").exists() or _zombie(child), f"{child} still runs"

        eventually_sync(child_gone, within=10)
    finally:
        kill_group(child)
        kill_group(parent.pid)


def _zombie(pid: int) -> bool:
    """Killed but not yet reaped by its (already dead) parent's reaper."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
