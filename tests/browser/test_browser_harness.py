"""The browser test's own machinery, without a browser or a stack: a missing browser
fails (never skips) and names the installer; the banner gives what a person uses. (A
hung stack killed with everything it started: ``tests/test_stacks.py``.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import web_ui
from tests.browser.devstack_process import Banner

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
