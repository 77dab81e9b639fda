"""Provider webhooks find sagas by what they hold: one table, provider → search attribute.

A saga is started with the search attributes of the provider objects it holds
(:func:`routing_of`, which each kind's ``routing`` in :mod:`starter.kinds` calls); a
verified webhook is signalled to the running sagas that hold its subject
(:func:`route_notice`). sTN sends no webhooks, so it has no entry.
"""

from __future__ import annotations

import re
from typing import Any

from temporalio.client import Client
from temporalio.common import SearchAttributeKey, SearchAttributePair
from temporalio.converter import encode_typed_search_attribute_value
from temporalio.service import RPCError, RPCStatusCode

from domain import search_attributes as sa
from domain.airalo import FutureOrderCancellationRequest
from domain.common import Provider, ProviderNotice, SagaSignal
from domain.rebilly import OrderCancellationRequest

#: The search attribute each provider's webhooks are routed by (not PII).
ROUTED_BY: dict[Provider, SearchAttributeKey[Any]] = {
    Provider.AIRALO: sa.AIRALO_REQUEST_IDS,
    Provider.REBILLY: sa.REBILLY_ORDER_ID,
}

#: A saga with more Airalo orders than this is not indexed by them (search attribute
#: values are limited in size): their webhooks reach no saga, which still settles
#: every order by lookup.
MAX_ROUTED_REQUEST_IDS = 50
#: Temporal's limit on one search attribute value (``limit.searchAttributesSizeOfValue``,
#: 2 KiB by default), counted here on the encoded value with its metadata. Fewer ids
#: can reach it too: each non-ASCII character is encoded as a ``\uXXXX`` escape.
MAX_ROUTING_VALUE_BYTES = 2048
_ROUTABLE_SUBJECT = re.compile(r"^[\w.@~-]{1,128}$")


def routing_of(
    *,
    rebilly: OrderCancellationRequest | None = None,
    airalo: FutureOrderCancellationRequest | None = None,
) -> list[SearchAttributePair[Any]]:
    """The search attributes a saga holding these parts is found by (not PII)."""
    pairs: list[SearchAttributePair[Any]] = []
    if rebilly is not None:
        pairs.append(SearchAttributePair(ROUTED_BY[Provider.REBILLY], rebilly.order_id))
    if airalo is not None and len(airalo.request_ids) <= MAX_ROUTED_REQUEST_IDS:
        pairs.append(SearchAttributePair(ROUTED_BY[Provider.AIRALO], list(airalo.request_ids)))
    # A value Temporal would refuse would refuse the start itself: left out instead.
    return [pair for pair in pairs if _fits(pair)]


def _fits(pair: SearchAttributePair[Any]) -> bool:
    encoded = encode_typed_search_attribute_value(pair.key, pair.value)
    return encoded.ByteSize() <= MAX_ROUTING_VALUE_BYTES


async def route_notice(client: Client, notice: ProviderNotice) -> list[str]:
    """Signal ``notice`` to every running saga that holds its subject; their ids.

    Found through visibility (eventually consistent: a saga started a moment ago
    may be missed; it settles its orders by lookup all the same). A subject that
    cannot be one of ours reaches no saga.
    """
    key = ROUTED_BY.get(notice.provider)
    if key is None or not _ROUTABLE_SUBJECT.fullmatch(notice.subject):
        return []
    query = f"{key.name} = '{notice.subject}' AND ExecutionStatus = 'Running'"
    routed = []
    async for execution in client.list_workflows(query, limit=100):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        try:
            await handle.signal(SagaSignal.PROVIDER_NOTICE, notice)
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:  # it ended meanwhile: fine
                raise
            continue
        routed.append(execution.id)
    return routed
