"""Following an admin job (fit or eval) to its end, for the tests."""

import time

ENDED = ("succeeded", "failed", "cancelled")

# A fit that samples for minutes (64 prompts x 64 answers of 100 tokens) and activates its
# result: what the kill, drain and cancel tests interrupt.
LONG_FIT = {
    "items": [{"prompt": "Life is"}] * 64,
    "options": {"samples_per_prompt": 64, "max_tokens": 100, "activate": True},
}


def wait_for_job(admin, kind: str, job_id: str, timeout: float = 600) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = admin.get(f"/admin/{kind}/{job_id}").json()
        if status["phase"] in ENDED:
            return status
        time.sleep(0.5)
    raise TimeoutError(f"{kind} job {job_id} still {status['phase']}")


def wait_for_sampling(admin, job_id: str, timeout: float = 120) -> None:
    """Until the fit has sampled its first answers (it is well into its work)."""
    deadline = time.time() + timeout
    while admin.get(f"/admin/fit/{job_id}").json()["progress"]["samples_done"] == 0:
        assert time.time() < deadline, f"fit job {job_id} sampled nothing in {timeout} s"
        time.sleep(0.1)
