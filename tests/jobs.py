"""Following an admin job (fit or eval) to its end, for the tests (client.jobs)."""

from client.jobs import ENDED, JobClient

# A fit that samples for minutes (64 prompts x 64 answers of 100 tokens) and activates its
# result: what the kill, drain and cancel tests interrupt.
LONG_FIT = {
    "items": [{"prompt": "Life is"}] * 64,
    "options": {"samples_per_prompt": 64, "max_tokens": 100, "activate": True},
}


def wait_for_job(admin, kind: str, job_id: str, timeout: float = 600) -> dict:
    """The job's status once it has ended, whatever the phase."""
    return JobClient(admin, kind).follow(job_id, timeout=timeout)


def wait_for_sampling(admin, job_id: str, timeout: float = 120) -> None:
    """Until the fit has sampled its first answers (it is well into its work)."""
    status = JobClient(admin, "fit").follow(
        job_id, until=lambda s: s["progress"]["samples_done"] > 0 or s["phase"] in ENDED, interval=0.1, timeout=timeout
    )
    assert status["progress"]["samples_done"] > 0, f"fit job {job_id} ended {status['phase']} before it sampled"
