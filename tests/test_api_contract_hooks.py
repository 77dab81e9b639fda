"""The fuzzer's hooks (``reliability/api_contract_hooks.py``) that keep a case within
what the document says in words or away from what the suite checks."""

from __future__ import annotations

from reliability import api_contract_hooks as hooks
from reliability.outcomes import ENDPOINT
from sandbox.testing import SandboxAdmin


def test_a_fuzzed_subscription_never_points_at_the_suites_subscriber() -> None:
    with SandboxAdmin("http://127.0.0.1:8099") as admin:
        suite = admin.subscriber_url(ENDPOINT)
    moved = hooks.away_from_the_suite_subscriber({"url": suite, "secret": "whsec_x"})
    assert moved["url"] != suite
    assert moved["url"].rsplit("/", 1)[0] == suite.rsplit("/", 1)[0]  # same subscriber
    assert moved["secret"] == "whsec_x"
    for kept in ({"url": "https://crm.example/hooks"}, {"url": 3}, ["not", "a", "body"]):
        assert hooks.away_from_the_suite_subscriber(kept) == kept
