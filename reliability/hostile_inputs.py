"""Hostile inputs for scenario 5: what Hypothesis draws, and what the rules make of it.

* :func:`payloads` — a request body of some kind: well formed with awkward but valid
  values, the same with one field broken, or a schema-shaped body
  (``reliability.schema_bodies``, the strategies of the former hand-written API fuzz);
* :class:`Filler` — makes each drawn body unique at send time (ids, phone numbers,
  eSIM orders are business keys) and dates it relative to now;
* :func:`cli_args` — the ``cancelctl`` arguments that mean exactly that body, if any;
* :func:`oracle` — the domain's own parser's verdict on it (the request, or why not).
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from domain.common import InvalidRequest, SagaKind
from reliability.schema_bodies import body_for, json_values
from starter.kinds import KINDS

UID, PHONE, PHONE_FULLWIDTH, ESIM = "⟪uid⟫", "⟪phone⟫", "⟪phonefw⟫", "⟪esim⟫"
#: A 25-character id Airalo never issued (unique per input: the ids are the business key).
UNKNOWN_ESIM = "⟪unknown-esim⟫"
WISH = "⟪wish⟫"  # ⟪wish⟫seconds|tz minutes|style⟪/wish⟫
WISH_END = "⟪/wish⟫"
PAST = "⟪past⟫"
FULLWIDTH = str.maketrans(string.digits, "".join(chr(0xFF10 + n) for n in range(10)))


# -- strategies ----------------------------------------------------------------------

_pad = st.sampled_from(["", "", "", " ", "\t", "\u3000", "\u00a0", "  "])
#: Full-width letters and digits, which NFKC folds to ASCII.
_FOLDED = "".join(chr(ord(char) + 0xFEE0) for char in "ABc019")
_id_chars = string.ascii_letters + string.digits + "-_.@~" + _FOLDED
_rebilly_chars = string.ascii_letters + string.digits + "-_.@~"


def _ident(chars: str, max_size: int = 12, padded: bool = True) -> st.SearchStrategy[str]:
    body = st.text(st.sampled_from(chars), max_size=max_size)
    pad = _pad if padded else st.just("")
    return st.builds(lambda a, text, b: f"{a}{UID}{text}{b}", pad, body, pad)


_phone = st.sampled_from(
    [
        f"06{PHONE}",
        f"06-{PHONE}",
        f"+316{PHONE}",
        f"00316{PHONE}",
        f" 06 {PHONE} ",
        f"{'06'.translate(FULLWIDTH)}{PHONE_FULLWIDTH}",
    ]
)
_tz_minutes = st.sampled_from([0, 0, 60, 120, 330, 345, -480, -210, 840, -720])
_wish = st.builds(
    lambda seconds, tz, style: f"{WISH}{seconds:.1f}|{tz}|{style}{WISH_END}",
    st.floats(8, 60),
    _tz_minutes,
    st.sampled_from(["iso", "z", "micro"]),
)
_bad_wish = st.sampled_from(
    [
        PAST,
        "2030-01-01T00:00:00",
        "next tuesday",
        "",
        "2099-13-45T00:00:00Z",
        "2099-01-01T00:00:00Z",
    ]
)
_line_item = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["debit", "credit"]),
        "unitPriceAmount": st.floats(0, 500, allow_nan=False).map(lambda x: round(x, 2)),
        "unitPriceCurrency": st.sampled_from(["EUR", "eur", "Usd"]),
        "quantity": st.integers(1, 5),
    },
    optional={"description": st.text(max_size=40)},
)


def _optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


def _line(with_date: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    target = st.one_of(
        st.fixed_dictionaries({"subscriptionId": _ident(_id_chars)}),
        st.fixed_dictionaries({"phoneNumber": _phone}),
    )
    extra = _optional(
        wishDate=st.one_of(_wish, _wish, _bad_wish) if with_date else st.nothing(),
        referenceNumber=st.text(st.sampled_from(_id_chars), min_size=1, max_size=16),
        customerId=_ident(_id_chars),
    )
    return st.builds(lambda a, b: {**a, **b}, target, extra)


def _order(standalone: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    when: st.SearchStrategy[dict[str, Any]] = (
        st.one_of(
            st.fixed_dictionaries({"churnTime": st.one_of(_wish, _wish, _bad_wish)}),
            st.fixed_dictionaries({"churnTimePolicy": st.sampled_from(["now", "at-next-renewal"])}),
            st.just({}),
        )
        if standalone
        else st.just({})
    )
    extra = _optional(
        reason=st.sampled_from(["other", "too-expensive", "did-not-use", "bored"]),
        canceledBy=st.sampled_from(["customer", "merchant", "rebilly", "nobody"]),
        prorated=st.booleans(),
        description=st.text(max_size=256),
        lineItems=st.lists(_line_item, max_size=2) if standalone else st.nothing(),
        customerId=_ident(_id_chars) if standalone else st.nothing(),
    )
    order = st.fixed_dictionaries({"orderId": _ident(_rebilly_chars, padded=standalone)})
    return st.builds(lambda a, b, c: {**a, **b, **c}, order, when, extra)


_esim_ids = st.lists(st.sampled_from([ESIM, ESIM, UNKNOWN_ESIM]), min_size=1, max_size=4)


def _esims(standalone: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    ids = st.fixed_dictionaries({"requestIds": _esim_ids})
    extra = _optional(customerId=_ident(_id_chars)) if standalone else st.just({})
    return st.builds(lambda a, b: {**a, **b}, ids, extra)


def _churn() -> st.SearchStrategy[dict[str, Any]]:
    head = st.fixed_dictionaries(
        {
            "customerId": _ident(_rebilly_chars, padded=False),
            "wishDate": st.one_of(_wish, _wish, _wish, _bad_wish),
        }
    )
    parts = _optional(
        stn=_line(with_date=False).map(
            lambda d: {k: v for k, v in d.items() if k in ("subscriptionId", "phoneNumber")}
        ),
        rebilly=_order(standalone=False),
        airalo=_esims(standalone=False),
    )
    return st.builds(lambda a, b: {**a, **b}, head, parts)


WELL_FORMED: dict[SagaKind, st.SearchStrategy[dict[str, Any]]] = {
    SagaKind.LINE_TERMINATION: _line(),
    SagaKind.ORDER_CANCELLATION: _order(),
    SagaKind.FUTURE_ORDER_CANCELLATION: _esims(),
    SagaKind.CUSTOMER_CHURN: _churn(),
}


@st.composite
def payloads(draw: st.DrawFn) -> tuple[SagaKind, Any]:
    """A request body of some kind: well formed, one field broken, or fuzz."""
    kind = draw(st.sampled_from(list(SagaKind)))
    roll = draw(st.integers(0, 99))
    if roll < 12:
        return kind, draw(body_for(KINDS[kind].model.__name__))
    body = draw(WELL_FORMED[kind])
    if roll < 40 and body:
        field_name = draw(st.sampled_from(sorted(body)))
        how = draw(st.sampled_from(["replace", "drop", "unknown"]))
        if how == "replace":
            body[field_name] = draw(json_values)
        elif how == "drop":
            del body[field_name]
        else:
            body[draw(st.text(max_size=10))] = draw(json_values)
    return kind, body


# -- filling in the unique parts at send time ---------------------------------------


@dataclass
class Filler:
    """Makes each drawn body unique (ids, phone numbers, eSIM orders) and dates it now."""

    esims: list[str]
    counter: int = 0
    used_esims: int = 0
    unknown: int = 0

    def fill(self, value: Any, now: datetime) -> Any:
        self.counter += 1
        return self._fill(value, now, f"H{self.counter}x")

    def _fill(self, value: Any, now: datetime, uid: str) -> Any:
        if isinstance(value, dict):
            return {self._fill(k, now, uid): self._fill(v, now, uid) for k, v in value.items()}
        if isinstance(value, list):
            return [self._fill(item, now, uid) for item in value]
        if not isinstance(value, str):
            return value
        if value == ESIM:
            return self._esim()
        if value == UNKNOWN_ESIM:
            self.unknown += 1
            return f"U{self.unknown:08d}".ljust(25, "u")
        digits = f"{self.counter:08d}"
        text = value.replace(UID, uid).replace(PHONE_FULLWIDTH, digits.translate(FULLWIDTH))
        text = text.replace(PHONE, digits).replace(PAST, (now - timedelta(days=2)).isoformat())
        while WISH in text:
            head, _, rest = text.partition(WISH)
            spec, _, tail = rest.partition(WISH_END)
            text = head + _wish_text(spec, now) + tail
        return text

    def _esim(self) -> str:
        if self.used_esims < len(self.esims):
            self.used_esims += 1
            return self.esims[self.used_esims - 1]
        return "Z" * 25  # the pool ran dry: an id Airalo never heard of


def _wish_text(spec: str, now: datetime) -> str:
    seconds, minutes, style = spec.split("|")
    zone = timezone(timedelta(minutes=int(minutes)))
    moment = (now + timedelta(seconds=float(seconds))).astimezone(zone)
    if style == "micro":
        return moment.isoformat()
    moment = moment.replace(microsecond=0)
    if style == "z" and int(minutes) == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.isoformat()


# -- cancelctl's arguments for a body, when it can express it ---------------------------


def _opt(name: str, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, str):
        raise _Inexpressible
    return [f"{name}={value}"]


class _Inexpressible(Exception):
    """``cancelctl`` has no way to say this body."""


def _only(body: dict[str, Any], allowed: set[str]) -> None:
    """Only fields ``cancelctl`` has flags for, and none set to null: a flag can be left
    out, but not given as null (null and absent differ for some fields)."""
    if not set(body) <= allowed or any(value is None for value in body.values()):
        raise _Inexpressible


def _billing(body: dict[str, Any]) -> list[str]:
    argv = _opt("--reason", body.get("reason")) + _opt("--canceled-by", body.get("canceledBy"))
    prorated = body.get("prorated")
    if prorated not in (None, True, False):
        raise _Inexpressible
    return (
        argv + (["--prorated"] if prorated else []) + _opt("--description", body.get("description"))
    )


def _positional(values: list[Any]) -> list[str]:
    if not all(isinstance(v, str) and v and not v.startswith("-") for v in values):
        raise _Inexpressible
    return values


def cli_args(kind: SagaKind, body: Any) -> list[str] | None:
    """``cancelctl`` arguments meaning exactly ``body``, or ``None``."""
    if not isinstance(body, dict):
        return None
    try:
        return _cli_args(kind, body)
    except _Inexpressible:
        return None


def _cli_args(kind: SagaKind, body: dict[str, Any]) -> list[str]:
    if kind == SagaKind.LINE_TERMINATION:
        _only(body, {"subscriptionId", "phoneNumber", "wishDate", "referenceNumber", "customerId"})
        if ("subscriptionId" in body) == ("phoneNumber" in body):
            raise _Inexpressible  # exactly one of the two is a CLI rule, not a domain rule
        return [
            "terminate",
            *_opt("--subscription-id", body.get("subscriptionId")),
            *_opt("--phone", body.get("phoneNumber")),
            *_opt("--wish-date", body.get("wishDate")),
            *_opt("--reference", body.get("referenceNumber")),
            *_opt("--customer-id", body.get("customerId")),
        ]
    if kind == SagaKind.ORDER_CANCELLATION:
        _only(
            body,
            {
                "orderId",
                "churnTime",
                "churnTimePolicy",
                "reason",
                "canceledBy",
                "prorated",
                "description",
                "lineItems",
                "customerId",
            },
        )
        items = body.get("lineItems") or []
        if not isinstance(items, list):
            raise _Inexpressible
        return [
            "cancel-order",
            *_opt("--churn-time", body.get("churnTime")),
            *_opt("--policy", body.get("churnTimePolicy")),
            *_billing(body),
            *[f"--line-item={json.dumps(item)}" for item in items],
            *_opt("--customer-id", body.get("customerId")),
            "--",
            *_positional([body.get("orderId")]),
        ]
    if kind == SagaKind.FUTURE_ORDER_CANCELLATION:
        _only(body, {"requestIds", "customerId"})
        ids = body.get("requestIds")
        if not isinstance(ids, list) or not ids:
            raise _Inexpressible
        return [
            "cancel-future-orders",
            *_opt("--customer-id", body.get("customerId")),
            "--",
            *_positional(ids),
        ]
    _only(body, {"customerId", "wishDate", "stn", "rebilly", "airalo"})
    if "wishDate" not in body:
        raise _Inexpressible  # --wish-date is required by the parser
    argv = ["churn", *_opt("--wish-date", body["wishDate"])]
    stn, rebilly, airalo = body.get("stn"), body.get("rebilly"), body.get("airalo")
    if stn is not None:
        if not isinstance(stn, dict) or len(stn) != 1:
            raise _Inexpressible
        _only(stn, {"subscriptionId", "phoneNumber"})
        argv += _opt("--subscription-id", stn.get("subscriptionId"))
        argv += _opt("--phone", stn.get("phoneNumber"))
    if rebilly is not None:
        if not isinstance(rebilly, dict) or "orderId" not in rebilly:
            raise _Inexpressible
        _only(rebilly, {"orderId", "reason", "canceledBy", "prorated", "description"})
        argv += [*_opt("--order-id", rebilly["orderId"]), *_billing(rebilly)]
    if airalo is not None:
        if not isinstance(airalo, dict) or set(airalo) != {"requestIds"}:
            raise _Inexpressible
        argv += ["--esim-order", *_positional(airalo["requestIds"] or [""])]
    return [*argv, "--", *_positional([body.get("customerId")])]


# -- the oracle: what the domain's own rules make of a body --------------------------


@dataclass
class Verdict:
    """The domain parser's reading of a body: the request, or why it is refused."""

    request: BaseModel | None
    problems: str = ""
    crashed: str | None = None


def oracle(kind: SagaKind, body: Any, now: datetime) -> Verdict:
    if not isinstance(body, dict):
        return Verdict(None, "not an object")
    data = dict(body)
    raw = data.get("wishDate")
    if isinstance(raw, str):  # as the API reads it (starter.api.starting)
        try:
            moment = datetime.fromisoformat(raw)
            if moment.tzinfo:
                data["wishDate"] = moment
        except ValueError:
            pass
    try:
        return Verdict(KINDS[kind].parse(data, now))
    except (InvalidRequest, ValidationError) as refused:
        return Verdict(None, str(refused))
    except Exception as error:  # a crash in the rules is what a caller would see as a 500
        return Verdict(None, crashed=f"{type(error).__name__}: {error}")
