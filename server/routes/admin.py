"""Admin routes, behind a bearer token (MPO_ADMIN_TOKEN); without a token set, all refused."""

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from server.errors import APIError

bearer = HTTPBearer(auto_error=False)


def require_admin(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    token = request.app.state.settings.admin_token
    if token is None:
        raise APIError(401, "admin API is disabled: the server has no MPO_ADMIN_TOKEN")
    if credentials is None:
        raise APIError(401, "missing bearer token for the admin API")
    if not hmac.compare_digest(credentials.credentials.encode(), token.encode()):
        raise APIError(401, "wrong admin token")


router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])


class WeightsUpdate(BaseModel):
    weights: dict[str, float] = Field(description="New default weights by policy name (normalised to sum 1).")


@router.get("/mixture", summary="Components with role and path, and the default weights")
async def mixture(request: Request) -> dict:
    return request.app.state.services.admin.describe()


@router.put("/weights", summary="Set the default weights, live, without restart")
async def set_weights(body: WeightsUpdate, request: Request) -> dict:
    return await request.app.state.services.admin.set_default_weights(body.weights)
