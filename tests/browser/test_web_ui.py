"""A real browser on the Temporal Web UI of `make run`'s stack.

Starts the stack exactly as ``make run`` does (``python -m stacks.devstack``, free
ports, a temporary data directory), starts a line termination for a phone number
through its HTTP API with the dev key its banner prints, and opens that saga's run
page in Debian's chromium (playwright-core, ``run_page.mjs``). Two cases, each a
stack of its own:

- **codec on** (the default ``make run``): the browser signs in to the codec server
  with the banner's token and sets the UI's Codec Server dialog as the banner says;
  the Input shows the phone number, the Summary (masked number) and the Current
  Details (WAITING) are readable. Screenshots: ``docs/ui-run-summary.png``,
  ``docs/ui-run-details.png``, ``docs/ui-run-input.png``.
- **codec off** (``DEVSTACK_UI_CODEC=off``): the UI has no codec endpoint; the Input
  shows the ``binary/encrypted`` payload and the phone number is nowhere on the
  page. Screenshot: ``docs/ui-run-input-encrypted.png``.

Screenshots are copied into ``docs/`` only when the case passed and
``SAVE_SCREENSHOTS=1`` (``make screenshots``). Needs
``tests/browser/install.sh`` (Debian's chromium, playwright-core); without them
the test fails and says so. Run serially: ``pytest -p no:xdist tests/browser``.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from stacks.ports import port_is_open
from stacks.service import ROOT
from tests.browser.devstack_process import STOPPED, Banner, DevStack
from tests.browser.web_ui import (
    ENCODING,
    ENCODING_BASE64,
    Expect,
    RunPage,
    is_png,
    open_run_page,
    require_browser,
)

DOCS = ROOT / "docs"
CUSTOMER_ID = "C-UI-42"


@dataclass(frozen=True)
class Saga:
    workflow_id: str
    run_id: str
    phone: str


@contextmanager
def make_run(data_dir: Path, *, ui_codec: bool) -> Iterator[Banner]:
    """`make run` for the duration of the block; then Ctrl-C, and a clean stop is asserted."""
    stack = DevStack(data_dir, ui_codec=ui_codec)
    try:
        banner = stack.start()
        yield banner
    except BaseException:
        stack.stop()
        raise
    code = stack.stop()
    output = stack.output()
    assert code == 0, f"`make run` did not stop cleanly on Ctrl-C (exit {code}):\n{output}"
    assert STOPPED in output, output
    still_open = [port for port in stack.ports.all() if port_is_open(port)]
    assert not still_open, f"ports still served after the stop: {still_open}\n{output}"


def start_waiting_termination(banner: Banner) -> Saga:
    """A termination for a phone number a month ahead: the saga waits on its timer."""
    phone = f"06-{secrets.randbelow(10**8):08d}"
    wish_date = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    answer = httpx.post(
        f"{banner.api_url}/v1/line-terminations",
        headers={"Authorization": f"Bearer {banner.api_key}"},
        json={"phoneNumber": phone, "wishDate": wish_date.isoformat(), "customerId": CUSTOMER_ID},
        timeout=30.0,
    )
    assert answer.status_code == 202, answer.text
    started = answer.json()
    assert started["workflowId"].startswith("terminate-phone-"), started
    assert phone not in started["workflowId"]
    return Saga(started["workflowId"], started["runId"], phone)


# -- what each case must find -------------------------------------------------------------


def check_decrypted(page: RunPage, saga: Saga, banner: Banner) -> None:
    assert page.cluster_codec_endpoint == banner.codec_endpoint, (
        "the UI was not started with the banner's codec endpoint"
    )
    assert f'"phoneNumber": "{saga.phone}"' in page.input, page.input
    assert f'"customerId": "{CUSTOMER_ID}"' in page.input, page.input
    assert ENCODING not in page.input and ENCODING_BASE64 not in page.input, page.input
    assert "Running" in page.header and saga.workflow_id in page.header, page.header
    # What it waits for: the durable timer until the wish date.
    assert "Timer Started" in page.event_history, page.event_history
    summary = [text for text in page.rendered_panels if text.startswith("Terminate sTN line")]
    assert summary, f"no readable summary: {page.rendered_panels}"
    # The summary names the line masked, never the number itself.
    assert saga.phone not in summary[0] and saga.phone[-4:] in summary[0], summary[0]
    assert CUSTOMER_ID in summary[0], summary[0]
    details = [text for text in page.rendered_panels if text.startswith("WAITING")]
    assert details, f"no readable current details: {page.rendered_panels}"


def check_encrypted(page: RunPage, saga: Saga, banner: Banner) -> None:
    assert page.cluster_codec_endpoint == "", (
        f"DEVSTACK_UI_CODEC=off, yet the UI has the codec endpoint {page.cluster_codec_endpoint}"
    )
    assert ENCODING in page.input or ENCODING_BASE64 in page.input, page.input
    digits = saga.phone.replace("-", "")
    for shown in (saga.phone, digits, digits[2:]):
        assert shown not in page.page_text, f"{shown!r} is readable without the codec"
    assert "Terminate sTN line" not in page.page_text, "the summary is readable without the codec"
    assert "Running" in page.header and saga.workflow_id in page.header, page.header


@dataclass(frozen=True)
class Case:
    ui_codec: bool
    expect: Expect
    check: Callable[[RunPage, Saga, Banner], None]
    docs: frozenset[str]  # the screenshots this case puts into docs/


CASES = {
    "codec-on": Case(
        ui_codec=True,
        expect=Expect.DECRYPTED,
        check=check_decrypted,
        docs=frozenset({"ui-run-summary.png", "ui-run-details.png", "ui-run-input.png"}),
    ),
    "codec-off": Case(
        ui_codec=False,
        expect=Expect.ENCRYPTED,
        check=check_encrypted,
        docs=frozenset({"ui-run-input-encrypted.png"}),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_run_page_of_a_saga_in_the_web_ui(case: Case, tmp_path: Path) -> None:
    require_browser()
    with make_run(tmp_path / "stack", ui_codec=case.ui_codec) as banner:
        assert banner.codec_endpoint and banner.codec_token, (
            "`make run`'s banner announces no codec server (Codec server / Codec token lines)"
        )
        saga = start_waiting_termination(banner)
        page = open_run_page(
            ui_url=banner.ui_url,
            workflow_id=saga.workflow_id,
            run_id=saga.run_id,
            expect=case.expect,
            text=saga.phone,
            out=tmp_path / "screenshots",
            codec_endpoint=banner.codec_endpoint if case.expect is Expect.DECRYPTED else None,
            codec_token=banner.codec_token if case.expect is Expect.DECRYPTED else None,
        )
        case.check(page, saga, banner)
    shots = page.screenshots
    assert {path.name for path in shots.values()} == case.docs, shots
    for path in shots.values():
        assert is_png(path) and path.stat().st_size > 5_000, path
    # `make screenshots` refreshes the committed pictures; a plain test run leaves
    # docs/ alone (each run has new ids and times, so the files would always differ).
    if os.environ.get("SAVE_SCREENSHOTS") == "1":
        for path in shots.values():
            shutil.copyfile(path, DOCS / path.name)
