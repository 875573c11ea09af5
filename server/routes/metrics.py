"""GET /metrics: a few Prometheus gauges about the mixture and the engine's load."""

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus text: engine load and default weights")
async def metrics(request: Request) -> str:
    services = request.app.state.services
    lines = [
        "# HELP mpo_requests_unfinished Requests admitted to the engine and not yet finished or aborted.",
        "# TYPE mpo_requests_unfinished gauge",
        f"mpo_requests_unfinished {services.client.engine.get_num_unfinished_requests()}",
        "# HELP mpo_default_weight Default mixture weight of each policy.",
        "# TYPE mpo_default_weight gauge",
    ]
    for policy, weight in services.client.mixture.default_weights.items():
        lines.append(f'mpo_default_weight{{policy="{policy}"}} {weight}')
    return "\n".join(lines) + "\n"
