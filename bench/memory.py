"""Benchmark 7: memory stays flat. RSS of the API process and of the perform worker (the Celery
parent plus its pool children, summed) after `LATE` jobs compared with after `EARLY` jobs:
1000 vs 100 (quick: 300 vs 50).

Performs go through the API with instant fake providers, four at a time, each followed to its
end over SSE (so the API's pub/sub path is exercised, not only the submit). The worker is the
perform worker with its default concurrency (PERFORM_CONCURRENCY=4), never restarted and with
no max-tasks-per-child recycling: a leak would show. In quick mode the fake LLM answers with a
short fixed note (near the `affirmation` routine's lower bound, ~10 s of speech) so that 300 jobs fit
the time budget; the full run uses the ordinary notes.

value = the larger growth ratio (late RSS / early RSS) of API and worker; baseline = 1.0
(no growth). Target: both within 15% (ratio <= 1.15).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.harness import (
    Stack,
    api_client,
    follow_sse,
    log,
    make_users,
    result,
    rss_mb,
    submit,
)

NAME = "memory"
TARGET_GROWTH = 1.15
STREAMS = 4
SHORT_NOTE = ("Today you stand steady and kind. Breathe in calm, breathe out doubt. You are enough as you "
              "are, and every small step you take is real progress. Trust your pace.")


def _rss(stack: Stack) -> dict:
    api = sum(rss_mb(stack.pid("api")).values())
    worker_tree = rss_mb(stack.pid("worker-mem"))
    return {"api_mb": round(api, 1), "worker_mb": round(sum(worker_tree.values()), 1),
            "worker_processes_mb": sorted(worker_tree.values())}


def run(stack: Stack, quick: bool) -> dict:
    early, late = (50, 300) if quick else (100, 1000)
    stack.stop_workers()  # only the measured worker consumes
    api_url = stack.ensure_api()
    stack.provider_latency(llm_s=0.0, tts_s=0.0)
    routine = "morning_motivation"
    if quick:
        httpx.post(stack.urls["gemini"] + "/_fake/reply", json={"text": SHORT_NOTE}, timeout=5).raise_for_status()
        routine = "affirmation"
    users = make_users(stack, 25)
    stack.start_worker("mem", ("perform",), concurrency=4)
    samples: dict[int, dict] = {}
    started = time.time()
    try:
        with api_client(api_url) as client:
            def one(i: int) -> str:
                user = users[i % len(users)]
                job = submit(client, user, f"mem-{i}", routine=routine)
                return follow_sse(client, user, job["events_url"])[-1][1]["state"]

            done = 0
            with ThreadPoolExecutor(STREAMS) as pool:
                for target in (early, late):
                    states = list(pool.map(one, range(done, target)))
                    if any(s != "succeeded" for s in states):
                        raise RuntimeError(f"{states.count('failed')} performs failed")
                    done = target
                    time.sleep(1.0)  # let in-flight cleanup finish before sampling
                    samples[target] = _rss(stack)
                    log(f"{NAME}: after {target} jobs {samples[target]} ({time.time() - started:.0f} s)")
    finally:
        if quick:
            httpx.post(stack.urls["gemini"] + "/_fake/reply", json={"text": None}, timeout=5)
        stack.stop("worker-mem")
    api_ratio = samples[late]["api_mb"] / samples[early]["api_mb"]
    worker_ratio = samples[late]["worker_mb"] / samples[early]["worker_mb"]
    worst = max(api_ratio, worker_ratio)
    return result(
        NAME, value=worst, baseline=1.0, ratio=worst, unit="RSS late/early",
        target=f"API and worker RSS after {late} jobs within {TARGET_GROWTH - 1:.0%} of after {early}",
        met=api_ratio <= TARGET_GROWTH and worker_ratio <= TARGET_GROWTH,
        api_ratio=round(api_ratio, 3), worker_ratio=round(worker_ratio, 3),
        early_jobs=early, late_jobs=late, rss_early=samples[early], rss_late=samples[late],
        worker_concurrency=4, short_notes=quick, seconds=round(time.time() - started, 1))
