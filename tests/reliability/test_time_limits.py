"""A perform killed by the hard time limit is failed at once and gives its characters back."""

from __future__ import annotations

from tests.conftest import wait_job
from tests.reliability.chaos import chaos_stack, perform, user_with_voice


def test_a_perform_killed_by_the_hard_time_limit_fails_and_gives_back(base_env, tmp_path):
    # A one-second limit leaves no soft limit (Celery's soft limit would be 0 s): the pool
    # child is killed outright, as when a run ignores or cannot see its soft limit.
    with chaos_stack(base_env, tmp_path, PERFORM_TIME_LIMIT_S="1") as stack:
        user, headers = user_with_voice(stack)
        stack.fake.set_latency(5, "synthesize")
        resp = perform(stack, headers)
        assert resp.status_code == 202, resp.text
        job = wait_job(stack.client, resp.json()["job_id"], headers, timeout_s=30)
        assert job["state"] == "failed" and job["error"]["error"] == "JOB_TIMEOUT", job
        assert stack.client.get("/user/me", headers=headers).json()["charCount"] == 0
        assert stack.db["charges"].find_one({"_id": job["job_id"]})["state"] == "released"
        assert "undo_pending" not in stack.db["jobs"].find_one({"_id": job["job_id"]})
        assert stack.db["recordings"].count_documents({"user_id": user["id"]}) == 0
