"""Benchmark 6: push latency, from a job transition published by a worker to its receipt by an
SSE client.

Real performs run through the API and a perform worker (instant fake providers; the note
rendering keeps the CPU busy, as in production) while SSE clients follow their jobs, four at a
time. The worker is the ordinary Celery worker started through bench/worker_shim.py, which
notes `time.time()` right before each publish (the Lua script that mirrors the job's view and
PUBLISHes it). Latency = SSE receive time - publish time, matched by (job, seq); one machine,
one clock. The first event of each stream is the current state read at connect time, not a
push, and is left out.

Baseline, in the same run: a plain redis-py subscriber (pattern subscription in a thread of the
same client process) receiving the very same publishes: what Redis pub/sub alone costs.
Target: p99 <= 20 ms.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from bench.harness import (
    Stack,
    api_client,
    follow_sse,
    log,
    make_users,
    percentile,
    result,
    submit,
    summary,
)
from bench.worker_shim import PUBLISHED_KEY

NAME = "push_latency"
TARGET_P99_MS = 20.0
STREAMS = 4


def _raw_subscriber(stack: Stack, seen: dict, stop: threading.Event) -> threading.Thread:
    import json

    import redis

    client = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.psubscribe("nv:job-events:*")

    def loop():
        try:
            while not stop.is_set():
                msg = pubsub.get_message(timeout=0.2)
                if msg and msg["type"] == "pmessage":
                    t = time.time()
                    view = json.loads(msg["data"])
                    seen[(view["job_id"], view["seq"])] = t
        except Exception as exc:
            seen["error"] = repr(exc)
        finally:
            pubsub.close()
            client.close()  # (the closure keeps the client alive: collected, it closes its pool)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def run(stack: Stack, quick: bool) -> dict:
    n = 8 if quick else 60
    api_url = stack.ensure_api()
    stack.provider_latency(llm_s=0.0, tts_s=0.0)
    users = make_users(stack, STREAMS)
    r = stack.redis()
    stack.ensure_worker("shim", queues=("perform",), concurrency=2, shim=True)  # shared with orchestration
    raw: dict = {}
    stop = threading.Event()
    sub_thread = _raw_subscriber(stack, raw, stop)
    received: list[tuple[str, int, float]] = []
    try:
        r.delete(PUBLISHED_KEY)
        with api_client(api_url) as client:
            def one(i: int) -> None:
                user = users[i % STREAMS]
                job = submit(client, user, f"push-{i}")
                events = follow_sse(client, user, job["events_url"])
                for t, view in events[1:]:  # the first is the state at connect time, not a push
                    received.append((view["job_id"], view["seq"], t))

            with ThreadPoolExecutor(STREAMS) as pool:
                list(pool.map(one, range(n)))
        time.sleep(0.3)
    finally:
        stop.set()
        sub_thread.join(timeout=5)
    published = {}
    for line in r.lrange(PUBLISHED_KEY, 0, -1):
        job_id, seq, stamp = line.split()
        published[(job_id, int(seq))] = float(stamp)
    r.delete(PUBLISHED_KEY)
    sse_ms = [(t - published[(j, s)]) * 1000 for j, s, t in received if (j, s) in published]
    raw_error = raw.pop("error", None)
    if raw_error:
        log(f"{NAME}: the plain subscriber failed: {raw_error}")
    raw_ms = [(t - published[k]) * 1000 for k, t in raw.items() if k in published]
    if not sse_ms:
        raise RuntimeError("no SSE event could be matched to a publish")
    p99, base_p99 = percentile(sse_ms, 99), percentile(raw_ms, 99)
    log(f"{NAME}: SSE p50 {percentile(sse_ms, 50):.2f} p99 {p99:.2f} ms; raw pub/sub p99 {base_p99:.2f} ms")
    return result(
        NAME, value=p99, baseline=base_p99, ratio=p99 / base_p99 if base_p99 else None, unit="ms (p99)",
        target=f"p99 <= {TARGET_P99_MS:.0f} ms", met=p99 <= TARGET_P99_MS,
        sse_ms=summary(sse_ms, 2), raw_pubsub_ms=summary(raw_ms, 2), performs=n, concurrent_streams=STREAMS,
        events_matched=len(sse_ms), events_received=len(received),
        note="value = p99 publish->SSE client; baseline = p99 publish->plain Redis subscriber, same publishes")
