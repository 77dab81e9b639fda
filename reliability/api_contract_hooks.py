"""Schemathesis hooks: credentials, and what the OpenAPI document says only in words.

Loaded by ``st`` itself (``hooks`` in ``reliability/schemathesis.toml``), in the
fuzzer's process, never by the product:

* **scheduled dates**: the document says a ``wishDate`` or ``churnTime`` lies ahead of
  the server's clock and at most ``MAX_SCHEDULE_AHEAD`` ahead, which no JSON Schema
  can. Every such date a request carries (drawn, or taken from an earlier answer by
  the stateful phase) is folded into that window just before it is sent, keeping its
  offset; what is no date stays as it is. The rule is not in the schema, so folding
  never turns a case the schema calls invalid into a valid one, nor the other way round;
* **a line item's period** does not end before it starts: a period is put in order;
* **the suite's own subscriber**: a subscription the fuzzer makes never points at the
  endpoint the suite checks (``reliability.outcomes.ENDPOINT``), which the stateful phase
  can take from ``GET /v1/subscriptions``: its events would arrive there signed with the
  fuzzer's secret, refused as they should be, and counted as unsigned. Such a URL is
  pointed at another endpoint of the same subscriber (the shape stays);
* **credentials**, by the security scheme each operation names: the API key
  (``CANCEL_CONTRACT_API_KEY``), Rebilly's Basic credentials and Airalo's signature of
  the body, as Airalo signs (``domain.airalo_signature``, keyed with
  ``CANCEL_API_AIRALO_WEBHOOK_SECRET``). In Python, not in the config file: a config
  file's ``[auth]`` would switch these providers off. The ``ignored_auth`` check still
  sends each operation without them;
* **speed**: the document's text rules are character classes of thousands of
  characters (``starter.api.text_rules``); Hypothesis builds a class character by
  character, each time Schemathesis asks for the same pattern anew (with a new
  alphabet object). Building once per pattern and alphabet (:func:`_built_once`)
  turns minutes into seconds; what is drawn does not change.
"""

from __future__ import annotations

import base64
import functools
import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import schemathesis
from hypothesis.strategies import SearchStrategy
from hypothesis.strategies._internal import regex as hypothesis_regex
from hypothesis.strategies._internal.lazy import unwrap_strategies

from domain.airalo_signature import HEADER, sign
from domain.common import MAX_SCHEDULE_AHEAD

API_KEY_ENV = "CANCEL_CONTRACT_API_KEY"
AIRALO_SECRET_ENV = "CANCEL_API_AIRALO_WEBHOOK_SECRET"
REBILLY_USERNAME_ENV = "CANCEL_API_REBILLY_WEBHOOK_USERNAME"
REBILLY_PASSWORD_ENV = "CANCEL_API_REBILLY_WEBHOOK_PASSWORD"

#: The fields the document describes as scheduled (``starter.api.contract.SCHEDULED``).
SCHEDULED_FIELDS = frozenset({"wishDate", "churnTime"})
#: Folded dates keep this far from either end of the window: a case may wait a while
#: between being made and being sent (the stateful phase strings several together).
MARGIN = timedelta(hours=1)

Case = schemathesis.Case[Any]
Context = schemathesis.AuthContext


# -- what the document says in words ---------------------------------------------------------


def _aware(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def fold_into_window(text: str, now: datetime) -> str:
    """``text`` if it is no aware date or already lies in the window; else the date the
    window holds at the same place modulo its length, in the same offset."""
    moment = _aware(text)
    start, length = now + MARGIN, MAX_SCHEDULE_AHEAD - 2 * MARGIN
    if moment is None or start <= moment <= start + length:
        return text
    offset = timedelta(seconds=moment.timestamp() % length.total_seconds())
    folded = (start + offset).astimezone(moment.tzinfo).isoformat()
    return folded.replace("+00:00", "Z") if text.endswith(("Z", "z")) else folded


#: Pairs of dates the document says are in order (a line item's period may be one
#: moment; a bulk selection's due window may not).
ORDERED = (("periodStartTime", "periodEndTime", False), ("dueAfter", "dueBefore", True))
#: What a bulk selection's ``query`` becomes: the document says it is a visibility
#: query, which no schema can; any one Temporal takes stands for the drawn text.
VISIBILITY_QUERY = "CancellationKind = 'TERMINATION'"


def _in_order(item: dict[str, Any]) -> dict[str, Any]:
    for first, second, strictly in ORDERED:
        start, end = item.get(first), item.get(second)
        if not (isinstance(start, str) and isinstance(end, str)):
            continue
        begins, ends = _aware(start), _aware(end)
        if begins is None or ends is None:
            continue
        if ends < begins:
            item = {**item, first: end, second: start}
        if strictly and begins == ends:
            later = (ends + timedelta(seconds=1)).isoformat()
            item = {**item, second: later}
    return item


def with_a_query(body: Any) -> Any:
    """A bulk operation's body with a visibility query in place of a drawn text (one the
    schema calls invalid, too long or not a text, stays)."""
    selection = body.get("selection") if isinstance(body, dict) else None
    query = selection.get("query") if isinstance(selection, dict) else None
    if not (isinstance(selection, dict) and isinstance(query, str) and 1 <= len(query) <= 2000):
        return body
    return {**body, "selection": {**selection, "query": VISIBILITY_QUERY}}


def as_described(value: Any, now: datetime) -> Any:
    """``value`` with every scheduled date in its window and every period in order."""
    if isinstance(value, list):
        return [as_described(item, now) for item in value]
    if not isinstance(value, dict):
        return value
    described = {
        key: (
            fold_into_window(item, now)
            if key in SCHEDULED_FIELDS and isinstance(item, str)
            else as_described(item, now)
        )
        for key, item in value.items()
    }
    return _in_order(described)


#: The suite's subscriber endpoint, as a URL ends (``sandbox.testing.subscriber_url``).
SUITE_SUBSCRIBER = "/subscriber/reliability"
FUZZER_SUBSCRIBER = "/subscriber/fuzzed"


def away_from_the_suite_subscriber(body: Any) -> Any:
    """A subscription's body pointed elsewhere than at the suite's own endpoint."""
    url = body.get("url") if isinstance(body, dict) else None
    if isinstance(url, str) and url.endswith(SUITE_SUBSCRIBER):
        return {**body, "url": url[: -len(SUITE_SUBSCRIBER)] + FUZZER_SUBSCRIBER}
    return body


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: Case, kwargs: Any) -> None:
    """Just before each request, in every phase (Schemathesis then re-reads the case).

    Not for the webhooks: their bodies are the providers' own, and a changed body would
    no longer match Airalo's signature."""
    if case.operation.path.startswith("/v1/webhooks/"):
        return
    described = as_described(case.body, datetime.now(UTC))
    if case.operation.path == "/v1/bulk-operations":
        described = with_a_query(described)
    if case.operation.path == "/v1/subscriptions":
        described = away_from_the_suite_subscriber(described)
    if described != case.body:  # untouched otherwise: Schemathesis re-reads what changed
        case.body = described


# -- credentials ---------------------------------------------------------------------------


def _scheme(name: str) -> Any:
    return schemathesis.auth(refresh_interval=None).apply_to(
        schemathesis.openapi.require_security_scheme(name)
    )


@_scheme("HTTPBearer")
class ApiKey:
    def get(self, case: Case, context: Context) -> str:
        return os.environ[API_KEY_ENV]

    def set(self, case: Case, key: str, context: Context) -> None:
        case.headers["Authorization"] = f"Bearer {key}"


@_scheme("HTTPBasic")
class RebillyBasic:
    def get(self, case: Case, context: Context) -> str:
        pair = f"{os.environ[REBILLY_USERNAME_ENV]}:{os.environ[REBILLY_PASSWORD_ENV]}"
        return base64.b64encode(pair.encode()).decode()

    def set(self, case: Case, token: str, context: Context) -> None:
        case.headers["Authorization"] = f"Basic {token}"


@_scheme("AiraloSignature")
class AiraloSignature:
    """Signs each Airalo webhook body as Airalo does."""

    def get(self, case: Case, context: Context) -> str:
        return os.environ[AIRALO_SECRET_ENV]

    def set(self, case: Case, secret: str, context: Context) -> None:
        try:
            signature = sign(case.body, secret)
        except (TypeError, ValueError):  # no body, or none that JSON (or UTF-8) holds
            return
        case.headers[HEADER] = signature


# -- speed ---------------------------------------------------------------------------------

_build = hypothesis_regex.base_regex_strategy
Intervals = tuple[tuple[int, int], ...]
_ALPHABETS: dict[Intervals | None, SearchStrategy[str] | None] = {}


@functools.cache
def _build_for(pattern: str, flags: int, alphabet: Intervals | None) -> SearchStrategy[str]:
    return _build(re.compile(pattern, flags), alphabet=_ALPHABETS[alphabet])


def _built_once(
    regex: re.Pattern[str], *, parsed: Any = None, alphabet: SearchStrategy[str] | None
) -> SearchStrategy[str]:
    """``base_regex_strategy`` once per pattern and alphabet (Hypothesis's own cache
    misses: Schemathesis hands it a new alphabet strategy each time)."""
    if not isinstance(regex.pattern, str):
        return _build(regex, parsed=parsed, alphabet=alphabet)
    key = None
    if alphabet is not None:
        unwrapped = unwrap_strategies(alphabet)  # type: ignore[no-untyped-call]
        key = tuple(unwrapped.intervals.intervals)
    _ALPHABETS.setdefault(key, alphabet)
    return _build_for(regex.pattern, regex.flags, key)


# The module's attribute: regex_strategy looks it up at each call.
setattr(hypothesis_regex, "base_regex_strategy", _built_once)  # noqa: B010
