"""Following an admin job (fit or eval) to its end, for the tests."""

import time

ENDED = ("succeeded", "failed", "cancelled")


def wait_for_job(admin, kind: str, job_id: str, timeout: float = 600) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = admin.get(f"/admin/{kind}/{job_id}").json()
        if status["phase"] in ENDED:
            return status
        time.sleep(0.5)
    raise TimeoutError(f"{kind} job {job_id} still {status['phase']}")
