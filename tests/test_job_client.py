"""client.jobs, the one job client, on a scripted server (httpx's MockTransport): pure logic;
the CLI, the study and the job tests use it against real servers."""

import httpx
import pytest

from client.jobs import ENDED, AdminError, JobClient, JobFailed
from server.jobs.lifecycle import ENDED as SERVER_ENDED


def scripted(phases: list, seen: list) -> httpx.Client:
    """A server whose fit job 7 reports `phases` in turn (an int: that status, an error)."""

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.method == "POST":
            return httpx.Response(202, json={"id": "7", "phase": "queued"})
        if request.method == "DELETE":
            return httpx.Response(200, json={"id": "7", "phase": "cancelled"})
        phase = phases.pop(0) if len(phases) > 1 else phases[0]
        if isinstance(phase, int):
            return httpx.Response(phase, json={"error": {"message": "the store is away", "type": "x"}})
        return httpx.Response(200, json={"id": "7", "phase": phase, "error": "boom" if phase == "failed" else None})

    return httpx.Client(base_url="http://server", transport=httpx.MockTransport(handle))


def test_the_client_ends_where_the_server_does():
    assert ENDED == SERVER_ENDED


def test_follow_shows_each_status_and_stops_at_the_end():
    seen, shown = [], []
    jobs = JobClient(scripted(["sampling", "fitting", "succeeded"], seen), "fit")
    status = jobs.follow("7", show=lambda s: shown.append(s["phase"]), interval=0)
    assert status["phase"] == "succeeded"
    assert shown == ["sampling", "fitting", "succeeded"]
    assert seen == ["GET /admin/fit/7"] * 3


def test_a_refusal_is_raised_with_the_servers_message_unless_it_is_retried():
    with pytest.raises(AdminError, match="error 503: the store is away") as refused:
        JobClient(scripted(["sampling", 503, "succeeded"], []), "fit").follow("7", interval=0)
    assert refused.value.status == 503
    status = JobClient(scripted(["sampling", 503, "succeeded"], []), "fit").follow("7", interval=0, retry=(AdminError,))
    assert status["phase"] == "succeeded"


def test_run_raises_for_a_job_that_did_not_succeed():
    with pytest.raises(JobFailed, match="fit job 7 failed: boom"):
        JobClient(scripted(["sampling", "failed"], []), "fit").run({"items": []}, interval=0)


def test_a_job_that_never_ends_times_out():
    with pytest.raises(TimeoutError, match="still sampling"):
        JobClient(scripted(["sampling"], []), "fit").follow("7", interval=0.01, timeout=0.05)


def test_ctrl_c_cancels_the_job_on_the_server():
    seen = []

    def interrupt(status: dict) -> None:
        if status["phase"] == "fitting":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        JobClient(scripted(["sampling", "fitting", "succeeded"], seen), "fit").follow("7", show=interrupt, interval=0)
    assert seen[-1] == "DELETE /admin/fit/7"


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind must be one of"):
        JobClient(httpx.Client(), "train")
