"""Benchmark: 1,000 concurrent SSE followers on one API process, each receiving its job's events.

100 jobs, each followed by 10 streams (one user per job, so the per-user cap is not in play
beyond its default of 10). Every stream first gets the job's current state; then each job
moves through five stages and finishes, the transitions written by the job store exactly as a
worker writes them (started by this process, so stages go to the Lua mirror + PUBLISH only).
Latency = receive time in the follower - time right before the transition was written; one
machine, one clock. The followers are their own process (bench/sse_followers.py: asyncio and
raw HTTP/1.1, opening all 1,000 streams at once), so the client's CPU is not taken from this
process, which writes the transitions; the API is one uvicorn process, as `make run` serves it.

Baseline, in the same run: a plain redis-py subscriber (pattern subscription) receiving the
very same publishes: what Redis pub/sub alone costs.
Checks: every stream opens (200), every follower receives every transition, and the API holds
one Redis pub/sub connection per followed job channel (PUBSUB NUMSUB == 1 with 10 followers
each).
Target: all events delivered, p99 <= 250 ms.
"""

from __future__ import annotations

import json
import select
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from bench.harness import PY, REPO, Stack, cpu_seconds, log, make_users, percentile, result, summary

NAME = "sse_fanout"
JOBS = 100
FOLLOWERS_PER_JOB = 10
STAGES = ("reserving", "composing", "acquiring_voice", "synthesizing", "mixing")
TARGET_P99_MS = 250.0
TIMEOUT_S = 120.0


class FollowerProcess:
    """bench/sse_followers.py as a child process: its one line says the streams are open, its
    result file carries what they received."""

    def __init__(self, api_url: str, streams: list[dict]) -> None:
        url = urlsplit(api_url)
        self._dir = tempfile.TemporaryDirectory(prefix="nv-sse-followers-")
        self._result = Path(self._dir.name) / "result.json"
        spec = {"host": url.hostname, "port": url.port, "timeout_s": TIMEOUT_S, "result_path": str(self._result),
                "streams": streams}
        spec_path = Path(self._dir.name) / "spec.json"
        spec_path.write_text(json.dumps(spec))
        self.proc = subprocess.Popen([PY, "-m", "bench.sse_followers", str(spec_path)], cwd=str(REPO),
                                     stdout=subprocess.PIPE, text=True)

    def opened(self) -> dict:
        ready, _, _ = select.select([self.proc.stdout], [], [], TIMEOUT_S + 10)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"the SSE follower process said nothing within {TIMEOUT_S + 10:.0f} s "
                               f"(exit code {self.proc.poll()})")
        return json.loads(line)

    def received(self) -> dict:
        code = self.proc.wait(TIMEOUT_S + 10)
        if code != 0 or not self._result.exists():
            raise RuntimeError(f"the SSE follower process exited with code {code} and no result")
        return json.loads(self._result.read_text())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc.stdout.close()
        self._dir.cleanup()


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
    streams = [{"path": f"/jobs/{job_id}/events", "token": u.token}
               for u, job_id in zip(users, jobs) for _ in range(FOLLOWERS_PER_JOB)]
    published: dict[tuple[str, str], float] = {}
    raw: dict = {}
    stop = threading.Event()
    sub_thread = _raw_subscriber(stack.redis_url, raw, stop)
    started = time.monotonic()
    followers = FollowerProcess(api_url, streams)
    try:
        opened = followers.opened()
        open_s = time.monotonic() - started
        numsub = dict(stack.redis().pubsub_numsub(*[f"nv:job-events:{j}" for j in jobs]))
        api_cpu_before, burst_started = cpu_seconds([stack.pid("api")]), time.monotonic()
        for stage in STAGES:
            for job_id in jobs:
                published[(job_id, stage)] = time.time()
                store.stage(job_id, stage, 0.5)
        for job_id in jobs:
            published[(job_id, "done")] = time.time()
            store.succeed(job_id, {"ok": True})
        write_s = time.monotonic() - burst_started
        out = followers.received()
        api_cpu_s = cpu_seconds([stack.pid("api")]) - api_cpu_before
    finally:
        followers.close()
        stop.set()
        sub_thread.join(timeout=5)
    sse_ms, per_stream = [], Counter()
    for i, t, data in out["events"]:
        view = json.loads(data)
        key = (view["job_id"], view["stage"])
        if key in published:
            sse_ms.append((t - published[key]) * 1000)
            per_stream[i] += 1
    raw_ms = [(t - published[k]) * 1000 for k, t in raw.items() if k in published]
    expected = JOBS * FOLLOWERS_PER_JOB * (len(STAGES) + 1)
    delivered = len(sse_ms)
    every_follower = sum(1 for i in range(len(streams)) if per_stream[i] == len(STAGES) + 1)
    p99, base_p99 = percentile(sse_ms, 99), percentile(raw_ms, 99)
    one_subscription = all(n == 1 for n in numsub.values())
    log(f"{NAME}: {opened['opened']}/{len(streams)} streams open in {open_s:.1f} s (answers {out['statuses']}, "
        f"errors {out['errors']}), {delivered}/{expected} events, every transition at {every_follower} followers, "
        f"p50 {percentile(sse_ms, 50):.1f} p99 {p99:.1f} ms; raw pub/sub p99 {base_p99:.2f} ms; "
        f"one subscription per job: {one_subscription}; CPU over the burst: API {api_cpu_s:.2f} s, "
        f"followers {out['cpu_s']:.2f} s")
    return result(
        NAME, value=p99, baseline=base_p99, ratio=p99 / base_p99 if base_p99 else None, unit="ms (p99)",
        target=f"all {expected} events delivered, p99 <= {TARGET_P99_MS:.0f} ms",
        met=delivered == expected and every_follower == len(streams) and p99 <= TARGET_P99_MS and one_subscription,
        followers=len(streams), jobs=JOBS, events_expected=expected, events_delivered=delivered,
        followers_with_every_transition=every_follower, stream_answers=out["statuses"],
        stream_errors=out["errors"], open_s=round(open_s, 2), write_s=round(write_s, 3),
        api_cpu_s_burst=round(api_cpu_s, 3), followers_cpu_s_burst=out["cpu_s"], sse_ms=summary(sse_ms, 1), raw_pubsub_ms=summary(raw_ms, 2),
        redis_subscribers_per_job=sorted(set(numsub.values())), seconds=round(time.monotonic() - started, 1),
        note="value = p99 transition->SSE follower over 1,000 streams (followers in their own process); "
             "baseline = p99 to a plain subscriber")
