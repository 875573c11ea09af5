"""Nothing is lost: a server killed during a fit comes back with the previously active
weights (applied in the engine), the job reported failed, and the weight history intact."""

import time

from tests.server_process import ServerProcess, admin_client, greedy


def test_killing_the_server_during_a_fit_loses_nothing(test_manifest, tmp_path):
    chosen = {"alpha": 0.8, "beta": 0.2}
    # The same replica name in both lives: the second fails its own interrupted job at once
    # (another replica's job would fail when its lease runs out; tests/server/test_replicas.py).
    same_replica = {"MPO_REPLICA_NAME": "restart-test"}
    first = ServerProcess(test_manifest, tmp_path, tmp_path / "first.log", env=same_replica)
    try:
        first.wait_ready()
        with admin_client(first) as admin:
            active = admin.put("/admin/weights", json={"weights": chosen}).json()["active_weight_set"]
            history = admin.get("/admin/weights/history").json()["data"]
            batch = {
                "items": [{"prompt": "Life is"}] * 64,
                "options": {"samples_per_prompt": 64, "max_tokens": 100, "activate": True},
            }
            job = admin.post("/admin/fit", json=batch).json()["id"]
            deadline = time.time() + 120
            while admin.get(f"/admin/fit/{job}").json()["progress"]["samples_done"] == 0:
                assert time.time() < deadline
                time.sleep(0.2)
        first.kill()
    finally:
        first.stop()

    second = ServerProcess(test_manifest, tmp_path, tmp_path / "second.log", env=same_replica)
    try:
        second.wait_ready()
        with admin_client(second) as admin:
            status = admin.get(f"/admin/fit/{job}").json()
            assert status["phase"] == "failed" and "stopped" in status["error"]
            assert status["result_weight_set"] is None
            mixture = admin.get("/admin/mixture").json()
            assert mixture["active_weight_set"] == active and mixture["default_weights"] == chosen
            assert admin.get("/admin/weights/history").json()["data"] == history
            # The engine itself runs the restored weights, not the manifest's defaults.
            assert greedy(admin, None) == greedy(admin, chosen)
            assert greedy(admin, None) != greedy(admin, {"alpha": 0.5, "beta": 0.5})
    finally:
        second.stop()
