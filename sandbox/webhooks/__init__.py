"""Outgoing provider webhooks: Airalo's fired future orders and Rebilly's subscription events.

``outbox`` turns store events into signed/authenticated HTTP messages, ``dispatcher``
delivers them from a background thread (retries, delivery log, injected delivery faults),
``payloads`` and ``signing`` hold the providers' wire formats, ``routes`` the admin API.
"""

from sandbox.webhooks.dispatcher import Dispatcher
from sandbox.webhooks.outbox import Outbox
from sandbox.webhooks.routes import build_admin_router

__all__ = ["Dispatcher", "Outbox", "build_admin_router"]
