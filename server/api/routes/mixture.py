"""GET /v1/mixture, POST /v1/mixture/score and POST /v1/mixture/votes: how the mixture is made,
what an answer scores on each of its objectives (server.serving.models, server.serving.objectives)
and a person's vote between two answers (server.preferences.votes); behind the API key, as
generation is: what the playground's compare and sweep panels need."""

from fastapi import APIRouter, Depends, Request

from server.api import schemas
from server.api.auth import require_api_key
from server.preferences.votes import VoteRequest
from server.serving.objectives import ScoreAnswersRequest

router = APIRouter(prefix="/v1", tags=["mixture"], dependencies=[Depends(require_api_key)])


@router.get(
    "/mixture",
    **schemas.answers(schemas.Mixture),
    summary="The mixture: policies, default weights, stored weight sets, objectives",
)
async def mixture(request: Request) -> dict:
    return request.app.state.services.models.mixture()


@router.post(
    "/mixture/score",
    **schemas.answers(schemas.AnswerRewards),
    summary="Each answer's reward on every objective of the mixture",
)
async def score(body: ScoreAnswersRequest, request: Request) -> dict:
    return await request.app.state.services.objectives.score(body)


@router.post(
    "/mixture/votes",
    **schemas.answers(schemas.Vote),
    summary="A vote between two answers to one prompt, for one of the mixture's objectives",
)
async def vote(body: VoteRequest, request: Request) -> dict:
    return await request.app.state.services.votes.cast(body, request.state.api_key)
