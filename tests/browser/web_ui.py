"""Drives ``run_page.mjs`` (playwright-core + Debian's chromium) and reads its report.

The browser part is JavaScript because playwright-core is the npm package; the
test and its assertions stay in pytest. Nothing here downloads a browser:
``install.sh`` installs Debian's chromium and ``npm ci`` installs playwright-core,
and a missing piece is a test failure naming the installer, never a skip.
"""

from __future__ import annotations

import enum
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
CHROMIUM = Path("/usr/bin/chromium")
PLAYWRIGHT = HERE / "node_modules" / "playwright-core" / "package.json"
RUN_PAGE = HERE / "run_page.mjs"
INSTALLER = "tests/browser/install.sh (make browser-deps)"
# Chromium's start, a sign-in, two tabs and their decoding, on 2 shared cores.
BROWSER_SECONDS = 240.0

ENCODING = "binary/encrypted"
# How the UI shows it without a codec: metadata values as the API holds them, base64.
ENCODING_BASE64 = "YmluYXJ5L2VuY3J5cHRlZA=="


class Expect(enum.StrEnum):
    """What the run page's Input section must show."""

    DECRYPTED = "decrypted"  # the UI decodes through the codec server: the input in clear
    ENCRYPTED = "encrypted"  # no codec endpoint: the payload as stored, encrypted


def require_browser() -> None:
    """Fail (never skip) with the installer's name when a piece is missing."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"Debian's chromium ({CHROMIUM})")
    if shutil.which("node") is None:
        missing.append("node")
    if not PLAYWRIGHT.exists():
        missing.append(f"playwright-core ({PLAYWRIGHT.parent})")
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run {INSTALLER}", pytrace=False)


@dataclass(frozen=True)
class RunPage:
    """What ``run_page.mjs`` found on the saga's run page."""

    raw: dict[str, Any]

    @property
    def input(self) -> str:
        return str(self.raw["input"])

    @property
    def header(self) -> str:
        return str(self.raw["header"])

    @property
    def event_history(self) -> str:
        return str(self.raw["eventHistory"])

    @property
    def rendered_panels(self) -> list[str]:
        """The Summary and Current Details texts (markdown the UI renders in iframes)."""
        return [str(text) for text in self.raw["renderedPanels"]]

    @property
    def page_text(self) -> str:
        """Every text read: the Input, the Event History, the User Metadata tab."""
        return str(self.raw["pageText"])

    @property
    def cluster_codec_endpoint(self) -> str:
        """The codec endpoint the UI was started with (``--ui-codec-endpoint``), or ''."""
        return str(self.raw["clusterCodecEndpoint"])

    @property
    def screenshots(self) -> dict[str, Path]:
        return {name: Path(path) for name, path in self.raw["screenshots"].items()}


def open_run_page(
    *,
    ui_url: str,
    workflow_id: str,
    run_id: str,
    expect: Expect,
    text: str,
    out: Path,
    codec_endpoint: str | None = None,
    codec_token: str | None = None,
) -> RunPage:
    """Run the browser on the run page; ``text`` is what the decrypted Input must show."""
    command = [
        "node",
        str(RUN_PAGE),
        f"--ui={ui_url}",
        f"--workflow-id={workflow_id}",
        f"--run-id={run_id}",
        f"--mode={expect.value}",
        f"--expect={text}",
        f"--out={out}",
    ]
    env = dict(os.environ)
    if codec_endpoint is not None:
        command.append(f"--codec-endpoint={codec_endpoint}")
    if codec_token is not None:
        env["CODEC_TOKEN"] = codec_token  # not in argv, where `ps` shows it
    finished = subprocess.run(
        command,
        cwd=HERE,
        env=env,
        capture_output=True,
        text=True,
        timeout=BROWSER_SECONDS,
        check=False,
    )
    if finished.returncode != 0:
        pytest.fail(
            f"run_page.mjs exited {finished.returncode}: {finished.stderr.strip()}\n"
            f"(screenshots, and failure.png if it failed, in {out})",
            pytrace=False,
        )
    return RunPage(json.loads(finished.stdout))


def is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
