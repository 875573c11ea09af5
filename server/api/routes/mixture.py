"""GET /v1/mixture and POST /v1/mixture/score: how the mixture is made and what an answer
scores on each of its objectives (server.serving.models, server.serving.objectives); behind
the API key, as generation is: what the playground's compare and sweep panels need."""

from fastapi import APIRouter, Depends, Request

from server.api.auth import require_api_key
from server.serving.objectives import ScoreAnswersRequest

router = APIRouter(prefix="/v1", tags=["mixture"], dependencies=[Depends(require_api_key)])


@router.get("/mixture", summary="The mixture: policies, default weights, stored weight sets, objectives")
async def mixture(request: Request) -> dict:
    return request.app.state.services.models.mixture()


@router.post("/mixture/score", summary="Each answer's reward on every objective of the mixture")
async def score(body: ScoreAnswersRequest, request: Request) -> dict:
    return await request.app.state.services.objectives.score(body)
