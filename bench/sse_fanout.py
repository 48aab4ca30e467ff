"""Benchmark: 1,000 concurrent SSE followers on one API process, each receiving its job's events.

100 jobs, each followed by 10 streams (one user per job, so the per-user cap is not in play
beyond its default of 10). Every stream first gets the job's current state; then each job
moves through five stages and finishes, the transitions written by the job store exactly as a
worker writes them (started by this process, so stages go to the Lua mirror + PUBLISH only). Latency = receive time in the follower - time right
before the transition was written; one machine, one clock. The followers are asyncio streams
in this process; the API is one uvicorn process, as `make run` serves it.

Baseline, in the same run: a plain redis-py subscriber (pattern subscription) receiving the
very same publishes: what Redis pub/sub alone costs.
Checks: every follower receives every transition; the API holds one Redis pub/sub connection
per followed job channel (PUBSUB NUMSUB == 1 with 10 followers each).
Target: all events delivered, p99 <= 250 ms.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

from bench.harness import Stack, log, make_users, percentile, result, summary

NAME = "sse_fanout"
JOBS = 100
FOLLOWERS_PER_JOB = 10
STAGES = ("reserving", "composing", "acquiring_voice", "synthesizing", "mixing")
TARGET_P99_MS = 250.0


async def _follow(url: str, token: str, job_id: str, got: list, opened: asyncio.Event, counter: list) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=120) as client, \
            client.stream("GET", f"/jobs/{job_id}/events", headers=headers) as resp:
        if resp.status_code != 200:
            raise RuntimeError(f"SSE answered {resp.status_code}")
        first = True
        async for line in resp.aiter_lines():
            if not line.startswith("data: "):
                continue
            t = time.time()
            if first:  # the state at connect time, not a push
                first = False
                counter[0] += 1
                if counter[0] == JOBS * FOLLOWERS_PER_JOB:
                    opened.set()
                continue
            view = json.loads(line[6:])
            got.append((view["job_id"], view["stage"], t))


def _raw_subscriber(redis_url: str, seen: dict, stop: threading.Event) -> threading.Thread:
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.psubscribe("nv:job-events:*")

    def loop():
        while not stop.is_set():
            msg = pubsub.get_message(timeout=0.2)
            if msg and msg["type"] == "pmessage":
                view = json.loads(msg["data"])
                seen[(view["job_id"], view["stage"])] = time.time()
        pubsub.close()
        client.close()  # the loop holds the client: collected early, it would close the pub/sub's socket

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def run(stack: Stack, quick: bool) -> dict:
    from shared.jobs.service import JobStore

    api_url = stack.ensure_api()
    users = make_users(stack, JOBS, voice=False)
    store = JobStore(stack.db(), stack.redis(), broker_url="redis://127.0.0.1:1/0")  # no worker: we move them
    jobs = [store.create(kind="diagnostic", user_id=u.id)[0].job_id for u in users]
    for job_id in jobs:  # running, as a worker holds them: their stages then go to Redis only
        store.start(job_id)
    published: dict[tuple[str, str], float] = {}
    raw: dict = {}
    stop = threading.Event()
    sub_thread = _raw_subscriber(stack.redis_url, raw, stop)
    got: list[tuple[str, str, float]] = []

    async def main() -> dict:
        opened, counter = asyncio.Event(), [0]
        followers = [asyncio.create_task(_follow(api_url, u.token, job_id, got, opened, counter))
                     for u, job_id in zip(users, jobs) for _ in range(FOLLOWERS_PER_JOB)]
        await asyncio.wait_for(opened.wait(), 120)
        numsub = dict(stack.redis().pubsub_numsub(*[f"nv:job-events:{j}" for j in jobs]))

        def move():
            for stage in STAGES:
                for job_id in jobs:
                    published[(job_id, stage)] = time.time()
                    store.stage(job_id, stage, 0.5)
            for job_id in jobs:
                published[(job_id, "done")] = time.time()
                store.succeed(job_id, {"ok": True})

        await asyncio.to_thread(move)
        await asyncio.wait_for(asyncio.gather(*followers), 120)
        return numsub

    started = time.monotonic()
    try:
        numsub = asyncio.run(main())
    finally:
        stop.set()
        sub_thread.join(timeout=5)
    sse_ms = [(t - published[(j, s)]) * 1000 for j, s, t in got if (j, s) in published]
    raw_ms = [(t - published[k]) * 1000 for k, t in raw.items() if k in published]
    expected = JOBS * FOLLOWERS_PER_JOB * (len(STAGES) + 1)
    delivered = len(sse_ms)
    p99, base_p99 = percentile(sse_ms, 99), percentile(raw_ms, 99)
    one_subscription = all(n == 1 for n in numsub.values())
    log(f"{NAME}: {JOBS * FOLLOWERS_PER_JOB} followers, {delivered}/{expected} events, p50 "
        f"{percentile(sse_ms, 50):.1f} p99 {p99:.1f} ms; raw pub/sub p99 {base_p99:.2f} ms; "
        f"one subscription per job: {one_subscription}")
    return result(
        NAME, value=p99, baseline=base_p99, ratio=p99 / base_p99 if base_p99 else None, unit="ms (p99)",
        target=f"all {expected} events delivered, p99 <= {TARGET_P99_MS:.0f} ms",
        met=delivered == expected and p99 <= TARGET_P99_MS and one_subscription,
        followers=JOBS * FOLLOWERS_PER_JOB, jobs=JOBS, events_expected=expected, events_delivered=delivered,
        sse_ms=summary(sse_ms, 1), raw_pubsub_ms=summary(raw_ms, 2),
        redis_subscribers_per_job=sorted(set(numsub.values())), seconds=round(time.monotonic() - started, 1),
        note="value = p99 transition->SSE follower over 1,000 streams; baseline = p99 to a plain subscriber")
