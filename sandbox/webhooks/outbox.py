"""Turns store events into provider webhooks and hands them to the :class:`Dispatcher`.

Targets, credentials and secrets are read from the settings when the event happens, so a
test can point them at its own receiver at runtime (``POST /_sandbox/config``).
"""

from __future__ import annotations

import json

from sandbox.airalo import FutureOrder
from sandbox.common import SandboxContext
from sandbox.rebilly.model import Cancellation, Order
from sandbox.webhooks.dispatcher import Dispatcher, Message
from sandbox.webhooks.payloads import airalo_fired_order, rebilly_subscription_event
from sandbox.webhooks.signing import (
    AIRALO_SIGNATURE_HEADER,
    airalo_body,
    airalo_signature,
    basic_authorization,
)

#: The delivery log's name for Airalo's fired-future-order notification (not sent on the wire).
AIRALO_ORDER_FIRED = "future-order-fired"
JSON_HEADERS = {"content-type": "application/json", "accept": "application/json"}


class Outbox:
    """Listener for :attr:`AiraloStore.on_fired` and :attr:`RebillyStore.on_event`."""

    def __init__(self, context: SandboxContext, dispatcher: Dispatcher) -> None:
        self.context = context
        self.dispatcher = dispatcher

    def airalo_order_fired(self, order: FutureOrder) -> None:
        """POST the order to its own ``webhook_url``, else to the opted-in URL, else nowhere."""
        settings = self.context.settings
        url = order.options.get("webhook_url") or settings.airalo_opted_in_webhook_url
        if not url:
            return
        payload = airalo_fired_order(order, order.processed_at or self.context.now())
        headers = {
            **JSON_HEADERS,
            AIRALO_SIGNATURE_HEADER: airalo_signature(settings.airalo_client_secret, payload),
        }
        body = airalo_body(payload, pretty=settings.airalo_webhook_pretty_body)
        self.dispatcher.submit(Message("airalo", AIRALO_ORDER_FIRED, url, body, headers))

    def rebilly_event(
        self, event_type: str, order: Order, cancellation: Cancellation | None
    ) -> None:
        """POST a subscription event with Basic auth to ``rebilly_webhook_url``, if set."""
        settings = self.context.settings
        url = settings.rebilly_webhook_url
        if not url:
            return
        payload = rebilly_subscription_event(
            event_type, order, cancellation, settings.rebilly_organization_id
        )
        headers = dict(JSON_HEADERS)
        if settings.rebilly_webhook_username is not None:
            headers["authorization"] = basic_authorization(
                settings.rebilly_webhook_username, settings.rebilly_webhook_password
            )
        body = json.dumps(payload).encode("utf-8")
        self.dispatcher.submit(Message("rebilly", event_type, url, body, headers))
