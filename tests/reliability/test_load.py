"""Load: many concurrent clients asking for voice notes on the local providers, each following
its job to the end as a real client does. Every request is accepted and delivered, quotas add
up exactly, no task is lost (jobs in MongoDB = requests sent), and neither the API (its own
uvicorn process, as in production) nor the workers grow in memory past 15 % after warm-up.

`make test` runs the short form (60 notes, 12 clients); `pytest -m slow` the full one
(500 notes, 50 clients). Both assert the same properties."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections import defaultdict

import pytest
from bson import ObjectId

from tests.conftest import api_client
from tests.reliability.chaos import chaos_stack, rss_mb, spawn_api, tree, user_with_voice

MEMORY_GROWTH_LIMIT = 1.15


def run_load(base_env, tmp, *, performs: int, clients: int, users: int) -> dict:
    with chaos_stack(base_env, tmp, fake_providers=False, concurrency=2) as stack:
        voiced = [user_with_voice(stack, monthly_limit=10_000_000) for _ in range(users)]
        api_proc, api_url = spawn_api(stack.env, tmp / "api.log")
        try:
            return _drive(stack, api_proc, api_url, voiced, performs, clients)
        finally:
            from cli import devstack

            devstack.stop_process(api_proc, grace_s=10)


def _drive(stack, api_proc, api_url, voiced, performs, clients) -> dict:
    worker = stack.workers.procs["w1"]
    counter = iter(range(performs))
    lock = threading.Lock()
    done: list[dict] = []
    refused: list[str] = []
    memory: dict[str, float] = {}
    warmup = max(10, performs // 5)

    def sample(label: str) -> None:
        memory[f"api_{label}"] = rss_mb(tree(api_proc))
        memory[f"workers_{label}"] = rss_mb(tree(worker))

    def client_loop(n: int) -> None:
        with api_client(api_url, timeout=60) as c:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                user, headers = voiced[i % len(voiced)]
                resp = c.post("/perform", headers=headers,
                              json={"routine_type": "morning_motivation", "topic": f"load note {i}"})
                if resp.status_code != 202:
                    with lock:
                        refused.append(f"{resp.status_code} {resp.text[:200]}")
                    continue
                job_id = resp.json()["job_id"]
                deadline = time.monotonic() + 300
                while time.monotonic() < deadline:
                    job = c.get(f"/jobs/{job_id}", headers=headers).json()
                    if job["state"] in ("succeeded", "failed"):
                        break
                    time.sleep(0.3)
                with lock:
                    done.append({"user": user["id"], **job})
                    if len(done) == warmup:
                        sample("warm")

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(client_loop, range(clients)))
    elapsed = time.monotonic() - started
    time.sleep(1)
    sample("end")

    assert not refused, refused[:5]
    assert len(done) == performs
    failed = [j for j in done if j["state"] != "succeeded"]
    assert not failed, [j.get("error") for j in failed[:5]]
    # no task lost: every request made exactly one job, one charge and one recording
    user_ids = [u["id"] for u, _ in voiced]
    job_ids = [j["job_id"] for j in done]
    assert len(set(job_ids)) == performs
    assert stack.db["jobs"].count_documents({"user_id": {"$in": user_ids}, "kind": "perform"}) == performs
    assert stack.db["jobs"].count_documents({"_id": {"$in": job_ids}, "state": "succeeded"}) == performs
    assert stack.db["charges"].count_documents({"_id": {"$in": job_ids}, "state": "charged"}) == performs
    assert stack.db["recordings"].count_documents({"job_id": {"$in": job_ids}}) == performs
    # quotas add up exactly, per user
    per_user: dict[str, int] = defaultdict(int)
    for j in done:
        per_user[j["user"]] += j["result"]["chars"]["effective"]
    for uid in user_ids:
        doc = stack.db["users"].find_one({"_id": ObjectId(uid)})
        assert doc["charCount"] == per_user[uid], (uid, doc["charCount"], per_user[uid])
    # memory: no growth past the limit once warm
    for part in ("api", "workers"):
        assert memory[f"{part}_end"] <= memory[f"{part}_warm"] * MEMORY_GROWTH_LIMIT, memory
    assert api_proc.poll() is None and worker.poll() is None
    figures = {"performs": performs, "clients": clients, "users": len(user_ids), "seconds": round(elapsed, 1),
               "notes_per_s": round(performs / elapsed, 2),
               "chars": sum(per_user.values()), **{k: round(v, 1) for k, v in memory.items()}}
    print(f"\nload: {figures}")
    return figures


def test_load_short(base_env, tmp_path):
    run_load(base_env, tmp_path, performs=60, clients=12, users=4)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_load_500_performs_from_50_clients(base_env, tmp_path):
    run_load(base_env, tmp_path, performs=500, clients=50, users=10)
