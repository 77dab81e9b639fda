"""Bearer API keys from ``CANCEL_API_KEYS``, each with scopes.

No key or an unknown key → 401 with ``WWW-Authenticate: Bearer``; a key without
the endpoint's scope → 403. Tokens are compared with ``hmac.compare_digest``
against every configured key (no early exit), and never logged.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from config.settings import ApiKey, ApiScope

bearer = HTTPBearer(
    auto_error=False,
    description="An API key from CANCEL_API_KEYS; its scopes decide what it may call.",
)


class Authenticator:
    def __init__(self, keys: Sequence[ApiKey]) -> None:
        self._keys = [(key, key.token.get_secret_value().encode()) for key in keys]

    def identify(self, token: str) -> ApiKey | None:
        presented = token.encode()
        found: ApiKey | None = None
        for key, secret in self._keys:
            if hmac.compare_digest(presented, secret) and found is None:
                found = key
        return found


def require(scope: ApiScope) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency: the caller's API key, which must hold ``scope``."""

    async def caller(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> ApiKey:
        authenticator: Authenticator = request.app.state.authenticator
        key = authenticator.identify(credentials.credentials) if credentials else None
        if key is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "a valid API key is required (Authorization: Bearer <key>)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if scope not in key.scopes:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"this API key lacks the scope {scope.value}"
            )
        return key

    return caller
