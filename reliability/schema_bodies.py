"""Request bodies shaped by the OpenAPI document, filled with awkward values.

The strategies of the hand-written API fuzz that Schemathesis replaced
(``reliability.api_contract``), kept for the hostile-input scenario
(``reliability.hostile_inputs``): a dict over a request schema's property names
(nested parts recursively) with wrong types, past, naive and garbled dates, long and
odd strings and nesting, or any JSON at all. Property names come from the committed
``docs/openapi.json``; a deprecated one (accepted and ignored) is left out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

DOCUMENT = json.loads((Path(__file__).parent.parent / "docs" / "openapi.json").read_text())
SCHEMAS: dict[str, Any] = DOCUMENT["components"]["schemas"]
#: A churn's parts, by the schema each part is.
NESTED = {
    "stn": "TerminationRequest",
    "rebilly": "OrderCancellationRequest",
    "airalo": "FutureOrderCancellationRequest",
}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            " ",
            "2020-01-01T00:00:00Z",
            "2099-01-01T00:00:00+01:00",
            "2099-01-01T00:00:00",
            "2099-13-45T99:99:99Z",
            "now",
            "at-next-renewal",
            "0612345678",
            "06-12345678",
            "x" * 300,
            "a" * 25,
            "'; DROP TABLE--",
            "\\' OR 1=1",
            "\u0000\u202e",
            "retry",
            "mark_handled",
        ]
    ),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def properties(schema_name: str) -> list[str]:
    """The schema's property names, but the deprecated ones."""
    found = SCHEMAS[schema_name].get("properties", {})
    return sorted(name for name, schema in found.items() if not schema.get("deprecated"))


def body_for(schema_name: str) -> st.SearchStrategy[Any]:
    """A dict over the schema's property names (nested parts recursively), or any JSON."""
    value_for: dict[str, st.SearchStrategy[Any]] = {
        name: json_values for name in properties(schema_name)
    }
    if schema_name == "CustomerChurnRequest":
        for part, part_schema in NESTED.items():
            value_for[part] = st.one_of(json_values, body_for(part_schema))
    shaped = st.fixed_dictionaries({}, optional=value_for)
    return st.one_of(shaped, shaped, json_values)
