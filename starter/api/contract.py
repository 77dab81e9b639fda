"""The domain's rules, stated in the request schemas of the OpenAPI document.

Pydantic writes what a model's fields declare (types, lengths, enums, Rebilly's
currency pattern); the rules the domain checks in its validators are added here, from
the domain's own constants and the patterns of :mod:`starter.api.text_rules`:

* ids are read NFKC-normalised and trimmed, never blank, without control characters
  (``Identifier``); Rebilly order ids and a churn's customer id in Rebilly's alphabet
  (``RebillyId``); Dutch mobile numbers (``DutchMobileNumber``); Airalo request ids of
  exactly 25 printable characters, unique (``AiraloRequestId``);
* one of two fields: ``subscriptionId`` or ``phoneNumber``; ``churnTime`` or
  ``churnTimePolicy``, not both; a churn with at least one part, whose parts leave
  the date, the customer and ``draft`` to the churn;
* a CloudEvent's ``type`` is one the API takes, and its ``data`` that kind's request.

What JSON Schema cannot say is said in words in the field's description: a scheduled
date lies ahead of the server's clock and at most ``MAX_SCHEDULE_AHEAD`` ahead
(``domain.common.schedule_problems``), a line item's period does not end before it
starts. The schema-driven fuzzer (``reliability/api_contract.py``) checks the document
against the running API both ways: what it calls valid is accepted, what it calls
invalid is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from domain.airalo import REQUEST_ID_LENGTH
from domain.bulk import CUSTOMER_ID_PATTERN, BulkAction
from domain.common import MAX_SCHEDULE_AHEAD
from domain.outcomes import MAX_URL_LENGTH, SECRET_PATTERN, SUBSCRIBER_URL_PATTERN
from starter.api.text_rules import (
    airalo_request_id_pattern,
    dutch_mobile_pattern,
    identifier_pattern,
    rebilly_id_pattern,
)
from starter.kinds import KINDS

Schema = dict[str, Any]

NORMALISED = (
    "Read in Unicode NFKC form (full-width letters and digits count as ASCII ones) and trimmed"
)
#: A date the saga waits for: the rule ``domain.common.schedule_problems`` applies.
SCHEDULED = (
    "ISO 8601 with a UTC offset. Checked against the server's clock when the request "
    f"arrives: not in the past, at most {MAX_SCHEDULE_AHEAD.days} days ahead."
)


def text_schemas() -> dict[str, Schema]:
    """The shared text rules, each a component the fields refer to."""
    return {
        "Identifier": {
            "type": "string",
            "pattern": identifier_pattern(),
            "description": f"{NORMALISED}; then not blank, no control characters.",
        },
        "RebillyId": {
            "type": "string",
            "pattern": rebilly_id_pattern(),
            "description": (
                f"{NORMALISED}; then only letters, digits and `_ - . ~ @` (Rebilly's id rule)."
            ),
        },
        "DutchMobileNumber": {
            "type": "string",
            "pattern": dutch_mobile_pattern(),
            "description": (
                "A Dutch mobile number: `0612345678`, `06-12345678`, `+31612345678` or "
                f"`0031612345678`, spaces anywhere. {NORMALISED}. Sent to sTN as `06-12345678`."
            ),
        },
        "AiraloRequestId": {
            "type": "string",
            "minLength": REQUEST_ID_LENGTH,
            "maxLength": REQUEST_ID_LENGTH,
            "pattern": airalo_request_id_pattern(REQUEST_ID_LENGTH),
            "description": (
                f"The `request_id` Airalo returned: exactly {REQUEST_ID_LENGTH} printable "
                "characters, no space at either end."
            ),
        },
    }


def refine(schemas: dict[str, Schema]) -> None:
    """Add the domain's rules to the request models' schemas (in place)."""
    schemas.update(text_schemas())
    _termination(schemas["TerminationRequest"])
    _order_cancellation(schemas["OrderCancellationRequest"])
    _line_item(schemas["LineItem"])
    _future_orders(schemas["FutureOrderCancellationRequest"])
    _churn(schemas["CustomerChurnRequest"])
    _scheduled(schemas["RescheduleRequest"], "wishDate", "The new wish date.")
    _cloud_event(schemas["CloudEvent"])
    _bulk(schemas["BulkRequest"], schemas["Selection"])
    _subscription(schemas["SubscriptionRequest"])
    _secret(schemas["RotateSecretRequest"])
    schemas["InvalidInput"]["properties"]["detail"]["minItems"] = 1


# -- each model ---------------------------------------------------------------------------


def _termination(schema: Schema) -> None:
    _text(schema, "subscriptionId", "Identifier")
    _text(schema, "referenceNumber", "Identifier")
    _text(schema, "customerId", "Identifier")
    _text(schema, "phoneNumber", "DutchMobileNumber")
    _scheduled(schema, "wishDate", "Absent: as soon as possible.")
    schema["anyOf"] = [_given(name) for name in ("subscriptionId", "phoneNumber")]
    _say(schema, "Give `subscriptionId` or `phoneNumber` (at least one).")


def _order_cancellation(schema: Schema) -> None:
    _text(schema, "orderId", "RebillyId")
    _text(schema, "customerId", "Identifier")
    _scheduled(schema, "churnTime", "Absent, and no `churnTimePolicy`: now.")
    schema["not"] = {
        "required": ["churnTime", "churnTimePolicy"],
        "properties": {"churnTime": _NOT_NULL, "churnTimePolicy": _NOT_NULL},
    }
    _say(schema, "Give `churnTime` or `churnTimePolicy`, not both.")
    # Inputs recorded before the field was dropped still carry it (domain.rebilly).
    schema["properties"]["proratedInvoiceId"] = {
        "deprecated": True,
        "description": "Ignored: Rebilly picks the prorated invoice itself.",
    }


def _line_item(schema: Schema) -> None:
    properties = schema["properties"]
    properties["periodStartTime"]["description"] = "ISO 8601 with a UTC offset."
    properties["periodEndTime"]["description"] = (
        "ISO 8601 with a UTC offset; not before `periodStartTime`."
    )


def _future_orders(schema: Schema) -> None:
    ids = schema["properties"]["requestIds"]
    ids["items"] = _ref("AiraloRequestId")
    ids["uniqueItems"] = True
    ids["description"] = "Any number of Airalo request ids, each once (batched by ten)."
    _text(schema, "customerId", "Identifier")


#: What a churn's parts leave to the churn (``domain.churn``): the date, the customer.
_SET_BY_CHURN = {
    "stn": ("wishDate", "customerId"),
    "rebilly": ("churnTime", "churnTimePolicy", "customerId"),
    "airalo": ("customerId",),
}


def _churn(schema: Schema) -> None:
    _text(schema, "customerId", "RebillyId")
    _scheduled(schema, "wishDate", "The day every part ends.")
    properties = schema["properties"]
    for part, unset in _SET_BY_CHURN.items():
        branches = properties[part]["anyOf"]
        model = next(branch for branch in branches if "$ref" in branch)
        left: Schema = {"properties": {name: {"type": "null"} for name in unset}}
        if part == "rebilly":  # and `draft`: true is refused
            left["properties"]["draft"] = {"const": False}
        branches[branches.index(model)] = {"allOf": [model, left]}
        properties[part]["description"] = f"Leave {_listed(unset)} out: the churn sets them." + (
            " No `draft`: the churn keeps billing a draft until the line is gone."
            if part == "rebilly"
            else ""
        )
    schema["anyOf"] = [_given(part) for part in _SET_BY_CHURN]
    _say(schema, "Give at least one part: `stn`, `rebilly` or `airalo`.")


def _cloud_event(schema: Schema) -> None:
    properties = schema["properties"]
    properties["type"]["enum"] = [spec.event_type for spec in KINDS]
    schema["oneOf"] = [
        {
            "properties": {
                "type": {"const": spec.event_type},
                "data": _ref(spec.model.__name__),
            }
        }
        for spec in KINDS
    ]


def _bulk(schema: Schema, selection: Schema) -> None:
    fields = {  # what each action takes besides the selection
        BulkAction.RESCHEDULE: "wishDate",
        BulkAction.RESOLVE: "resolveAction",
    }
    schema["anyOf"] = [
        {
            "properties": {
                "action": {"const": action.value},
                **{
                    name: _NOT_NULL if fields.get(action) == name else {"type": "null"}
                    for name in fields.values()
                },
            },
            "required": [fields[action]] if action in fields else [],
        }
        for action in BulkAction
    ]
    _scheduled(schema, "wishDate", "Only for a reschedule, which needs it.")
    _say(
        schema,
        "A reschedule needs `wishDate`, a resolve `resolveAction`; no other action takes them.",
    )
    _string(selection["properties"]["customerId"])["pattern"] = CUSTOMER_ID_PATTERN
    filters = [name for name in selection["properties"] if name != "query"]
    selection["allOf"] = [
        {"not": {"required": ["query", name], "properties": {"query": _NOT_NULL, name: _NOT_NULL}}}
        for name in filters
    ]
    _string(selection["properties"]["query"])["description"] = (
        "A Temporal visibility query (its SQL-like syntax), e.g. "
        "`CancellationKind = 'CUSTOMER_CHURN'`; one Temporal refuses is answered 422."
    )
    _say(selection, "Give a `query` or filters, not both; `dueAfter` before `dueBefore`.")


def _subscription(schema: Schema) -> None:
    url = schema["properties"]["url"]
    url["pattern"] = SUBSCRIBER_URL_PATTERN
    url["maxLength"] = MAX_URL_LENGTH
    _secret(schema)


def _secret(schema: Schema) -> None:
    schema["properties"]["secret"]["pattern"] = SECRET_PATTERN


# -- the pieces ---------------------------------------------------------------------------

_NOT_NULL: Schema = {"not": {"type": "null"}}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _given(name: str) -> Schema:
    """The property is present and not null."""
    return {"required": [name], "properties": {name: _NOT_NULL}}


def _string(schema: Schema) -> Schema:
    """A property's string schema, whether or not it may be null."""
    if schema.get("type") == "string":
        return schema
    return next(option for option in schema["anyOf"] if option.get("type") == "string")


def _text(schema: Schema, name: str, rule: str) -> None:
    """The property (its string form) follows the text rule ``rule`` (a component)."""
    _string(schema["properties"][name])["allOf"] = [_ref(rule)]


def _scheduled(schema: Schema, name: str, more: str) -> None:
    schema["properties"][name]["description"] = f"{SCHEDULED} {more}"


def _say(schema: Schema, rule: str) -> None:
    """Add a rule, in words, to the model's description."""
    schema["description"] = f"{schema.get('description', '').rstrip()}\n\n{rule}".lstrip()


def _listed(names: Iterable[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)
