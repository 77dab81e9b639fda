"""Rebilly order cancellations and reactivations (RFC 9457 problem details on errors).

``model`` holds the vocabulary and state, ``parsing``/``rendering``/``problems`` the wire
format, ``store`` the rules, ``routes`` the HTTP routes.
"""

from sandbox.rebilly.model import RebillyState
from sandbox.rebilly.problems import PROFILE
from sandbox.rebilly.routes import build_admin_router, build_router
from sandbox.rebilly.store import RebillyStore

__all__ = ["PROFILE", "RebillyState", "RebillyStore", "build_admin_router", "build_router"]
