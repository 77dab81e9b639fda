"""Typed search attributes: how operators filter sagas in the Temporal UI.

Never put PII here: search attributes are indexed in clear and are not passed
through the payload codec.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

CANCELLATION_STATUS = SearchAttributeKey.for_keyword("CancellationStatus")
CANCELLATION_KIND = SearchAttributeKey.for_keyword("CancellationKind")
CANCELLATION_PROVIDERS = SearchAttributeKey.for_keyword_list("CancellationProviders")
WISH_DATE = SearchAttributeKey.for_datetime("WishDate")
CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
# The keyed hash of the delivery (CloudEvent source + id, or an Idempotency-Key
# header) that started the run: set by the HTTP API at start, never by a workflow.
IDEMPOTENCY_KEY = SearchAttributeKey.for_keyword("IdempotencyKey")
# What provider webhooks are routed by (set at start, never by a workflow): the
# Airalo request ids and the Rebilly order a saga holds. Not PII.
AIRALO_REQUEST_IDS = SearchAttributeKey.for_keyword_list("AiraloRequestIds")
REBILLY_ORDER_ID = SearchAttributeKey.for_keyword("RebillyOrderId")
# The jeopardy causes a running saga has now (``domain.outcomes.JeopardyCause``): set
# when it emits ``saga.jeopardy``, cleared when the cause no longer applies.
SAGA_JEOPARDY = SearchAttributeKey.for_keyword_list("SagaJeopardy")
# On each webhook delivery (``WebhookDelivery``), set at its start: the subscription,
# the saga whose event it carries, and the event type. Not PII.
OUTCOME_SUBSCRIPTION_ID = SearchAttributeKey.for_keyword("OutcomeSubscriptionId")
OUTCOME_SAGA_ID = SearchAttributeKey.for_keyword("OutcomeSagaId")
OUTCOME_EVENT_TYPE = SearchAttributeKey.for_keyword("OutcomeEventType")

ALL = (
    CANCELLATION_STATUS,
    CANCELLATION_KIND,
    CANCELLATION_PROVIDERS,
    WISH_DATE,
    CUSTOMER_ID,
    IDEMPOTENCY_KEY,
    AIRALO_REQUEST_IDS,
    REBILLY_ORDER_ID,
    SAGA_JEOPARDY,
    OUTCOME_SUBSCRIPTION_ID,
    OUTCOME_SAGA_ID,
    OUTCOME_EVENT_TYPE,
)


def dev_server_flags() -> list[str]:
    """``--search-attribute NAME=Type`` arguments for ``temporal server start-dev``."""
    kinds = {
        "KEYWORD": "Keyword",
        "KEYWORD_LIST": "KeywordList",
        "DATETIME": "Datetime",
        "TEXT": "Text",
        "INT": "Int",
        "FLOAT": "Double",
        "BOOL": "Bool",
    }
    flags: list[str] = []
    for key in ALL:
        flags += [
            "--search-attribute",
            f"{key.name}={kinds[key.indexed_value_type.name.removeprefix('INDEXED_VALUE_TYPE_')]}",
        ]
    return flags
