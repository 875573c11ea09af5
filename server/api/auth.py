"""Who may call what: API keys for /v1 (MPO_API_KEYS, like vLLM's --api-key) and the admin
token for /admin (MPO_ADMIN_TOKEN). Both are bearer tokens compared in constant time."""

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from server.api.errors import APIError

bearer = HTTPBearer(auto_error=False)


async def require_api_key(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """With MPO_API_KEYS set, /v1 needs one of them as a bearer token (as vLLM's --api-key);
    the key is kept in request.state.api_key (None without keys) for admission's per-key bound.
    Every key is compared, in constant time, so timing tells nothing about which was close."""
    request.state.api_key = None
    keys = request.app.state.settings.api_key_list
    if not keys:
        return
    if credentials is None:
        raise APIError(401, "missing API key: send it as 'Authorization: Bearer <key>'", code="invalid_api_key")
    sent = credentials.credentials.encode()
    matches = [hmac.compare_digest(sent, key.encode()) for key in keys]
    if not any(matches):
        raise APIError(401, "incorrect API key", code="invalid_api_key")
    request.state.api_key = keys[matches.index(True)]


async def require_admin(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    token = request.app.state.settings.admin_token
    if token is None:
        raise APIError(401, "admin API is disabled: the server has no MPO_ADMIN_TOKEN")
    if credentials is None:
        raise APIError(401, "missing bearer token for the admin API")
    if not hmac.compare_digest(credentials.credentials.encode(), token.encode()):
        raise APIError(401, "wrong admin token")
