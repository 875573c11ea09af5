"""Admin routes, behind the admin token (server.api.auth); without a token set, all refused."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from server.api import schemas
from server.api.auth import require_admin
from server.api.disconnect import cancel_on_disconnect
from server.api.errors import APIError
from server.jobs.eval_batch import EvalBatch, EvalOptions
from server.jobs.fit_batch import FitBatch, FitOptions, JobSeed, parse_json, parse_jsonl
from store.weight_store import MAX_ID

NDJSON = "application/x-ndjson"

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])


class ScoreItem(BaseModel):
    prompt: str | list[int] = Field(description="Prompt text (tokenised like /v1/completions) or token ids.")
    response: str | list[int] = Field(description="Response text (end-of-text appended) or exact token ids.")


class ScoreRequest(BaseModel):
    items: list[ScoreItem] = Field(min_length=1, max_length=4096)


class SampleRequest(BaseModel):
    prompts: list[str | list[int]] = Field(min_length=1, max_length=4096)
    n: int = Field(4, ge=1, le=256, description="Samples per prompt, from the reference (temperature 1).")
    max_tokens: int = Field(64, ge=1)
    seed: JobSeed = 0


class WeightsUpdate(BaseModel):
    weights: dict[str, float] = Field(description="New default weights by policy name (normalised to sum 1).")


@router.get(
    "/mixture",
    **schemas.answers(schemas.MixtureAdmin),
    summary="Components with role and path, and the default weights",
)
async def mixture(request: Request) -> dict:
    return request.app.state.services.weights.describe()


@router.put(
    "/weights", **schemas.answers(schemas.MixtureAdmin), summary="Set the default weights, live, without restart"
)
async def set_weights(body: WeightsUpdate, request: Request) -> dict:
    return await request.app.state.services.weights.set_default_weights(body.weights)


@router.get(
    "/weights/history",
    **schemas.answers(schemas.WeightHistory),
    summary="Every stored weight set, newest first, with the active one marked",
)
async def weights_history(request: Request) -> dict:
    return await request.app.state.services.weights.history()


@router.post(
    "/weights/{set_id}/activate",
    **schemas.answers(schemas.MixtureAdmin),
    summary="Make a stored weight set the default (rollback)",
)
async def activate_weights(set_id: Annotated[int, Path(ge=1, le=MAX_ID)], request: Request) -> dict:
    return await request.app.state.services.weights.activate(set_id)


@router.get(
    "/jobs",
    **schemas.answers(schemas.JobList),
    summary="The latest fit and eval jobs, newest first (their results: /admin/fit|eval/{id})",
)
async def jobs(request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict:
    return {"data": await request.app.state.services.store.recent_jobs(limit)}


@router.get(
    "/prompts",
    **schemas.answers(schemas.PromptSets),
    summary="The mixture's own prompt files (manifest 'prompts'), with their sizes",
)
async def prompt_sets(request: Request) -> dict:
    return request.app.state.services.prompt_sets.list()


@router.get(
    "/prompts/{name}",
    **schemas.file_route(NDJSON, "the prompt file"),
    summary="One of the mixture's prompt files, as JSONL",
)
async def prompt_set(name: str, request: Request) -> FileResponse:
    return FileResponse(request.app.state.services.prompt_sets.path(name), media_type="application/x-ndjson")


@router.get(
    "/preferences.jsonl",
    **schemas.file_route(NDJSON, "one pair a line"),
    summary="The votes cast on the mixture, as a batch of preference pairs (JSONL)",
)
async def preferences(request: Request, objective: str | None = None) -> Response:
    return Response(await request.app.state.services.votes.export(objective), media_type="application/x-ndjson")


@router.post(
    "/score",
    **schemas.answers(schemas.Scored),
    summary="log pi_k(response | prompt) for every component, and implicit rewards",
)
async def score(body: ScoreRequest, request: Request) -> dict:
    items = [(item.prompt, item.response) for item in body.items]
    return await cancel_on_disconnect(request, request.app.state.services.logprobs.score_items(items))


@router.post(
    "/sample",
    **schemas.answers(schemas.Sampled),
    summary="Samples from the reference policy with every component's log-probs",
)
async def sample(body: SampleRequest, request: Request) -> dict:
    work = request.app.state.services.logprobs.sample_prompts(body.prompts, body.n, body.max_tokens, body.seed)
    return await cancel_on_disconnect(request, work)


async def read_batch(
    request: Request, batch: type[FitBatch] | type[EvalBatch], options: type[FitOptions] | type[EvalOptions]
):
    """A job's body: JSON {items, options}, or a multipart upload of a JSONL file (field 'file')
    with the options as JSON (field 'options')."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise APIError(400, "multipart upload needs a JSONL file in the field 'file'", param="file")
        parsed = options.model_validate_json(str(form.get("options") or "{}"))
        return parse_jsonl((await upload.read()).decode("utf-8"), parsed, batch)
    return parse_json(await request.body(), batch)


@router.post(
    "/fit",
    status_code=202,
    **schemas.answers(schemas.FitStatus),
    openapi_extra=schemas.job_body(FitBatch),
    summary="Start an MPO fit: JSON {items, options}, or multipart file (JSONL) + options",
)
async def start_fit(request: Request) -> dict:
    job = await request.app.state.services.fits.start(await read_batch(request, FitBatch, FitOptions))
    return await request.app.state.services.fits.status(job.id)


@router.get(
    "/fit/{job_id}",
    **schemas.answers(schemas.FitStatus),
    summary="A fit job's phase, progress, current lambda and F estimate, result",
)
async def fit_status(job_id: str, request: Request) -> dict:
    return await request.app.state.services.fits.status(job_id)


@router.delete("/fit/{job_id}", **schemas.answers(schemas.FitStatus), summary="Cancel a running fit job")
async def cancel_fit(job_id: str, request: Request) -> dict:
    return await request.app.state.services.fits.cancel(job_id)


@router.get(
    "/fit/{job_id}/trajectory",
    **schemas.answers(schemas.Trajectory),
    summary="A fit's iterates so far: lambda, F estimate, per-objective estimates",
)
async def fit_trajectory(job_id: str, request: Request) -> dict:
    return await request.app.state.services.fits.trajectory(job_id)


@router.get(
    "/fit/{job_id}/plot.png",
    **schemas.file_route("image/png", "the plot"),
    summary="lambda and per-objective estimates over the iterations",
)
async def fit_plot(job_id: str, request: Request) -> Response:
    return Response(await request.app.state.services.fits.plot(job_id), media_type="image/png")


@router.post(
    "/eval",
    status_code=202,
    **schemas.answers(schemas.EvalStatus),
    openapi_extra=schemas.job_body(EvalBatch),
    summary="Start an evaluation of candidates on held-out prompts: JSON {items, options}, or multipart file + options",
)
async def start_eval(request: Request) -> dict:
    job = await request.app.state.services.evals.start(await read_batch(request, EvalBatch, EvalOptions))
    return await request.app.state.services.evals.status(job.id)


@router.get(
    "/eval/{job_id}",
    **schemas.answers(schemas.EvalStatus),
    summary="An eval job's phase and progress; when done, the table's numbers",
)
async def eval_status(job_id: str, request: Request) -> dict:
    return await request.app.state.services.evals.status(job_id)


@router.delete("/eval/{job_id}", **schemas.answers(schemas.EvalStatus), summary="Cancel a running eval job")
async def cancel_eval(job_id: str, request: Request) -> dict:
    return await request.app.state.services.evals.cancel(job_id)


@router.get(
    "/eval/{job_id}/plot.png",
    **schemas.file_route("image/png", "the plot"),
    summary="Win rates per objective and the mean rewards' Pareto front",
)
async def eval_plot(job_id: str, request: Request) -> Response:
    return Response(await request.app.state.services.evals.plot(job_id), media_type="image/png")


@router.get(
    "/eval/{job_id}/answers.jsonl",
    **schemas.file_route(NDJSON, "one answer a line"),
    summary="Every generated answer with its rewards, one JSON line each",
)
async def eval_answers(job_id: str, request: Request) -> FileResponse:
    path = await request.app.state.services.evals.answers_path(job_id)
    return FileResponse(path, media_type="application/x-ndjson", filename=f"eval-{job_id}.jsonl")
