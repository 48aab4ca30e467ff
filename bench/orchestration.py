"""Benchmark 2: orchestration overhead of a perform.

Performs run one after another through the real API, broker, perform worker and stores, with
instant providers (fake Gemini and fake ElevenLabs at zero latency). For each: the time from
`POST /perform` to the terminal SSE event, minus the time the worker spent inside the provider
calls (Gemini generate, ElevenLabs synthesize), DSP and encoding (`render_note`) and the note's
voice match scoring (`score_note`), each timed
around the call itself by the bench's worker shim (bench/worker_shim.py). What is left is what
the service adds: the submit request, queueing, the task's store reads and writes, the status
mirror and the push. The job's own per-stage `timings` are reported beside it (a stage also
holds the store writes made in it, so stage sums are only an upper bound of the work).

Baseline: the subtracted work itself (median seconds inside provider calls and DSP), so the
ratio is overhead / work.
Target: overhead p50 <= 30 ms and p99 <= 60 ms.
"""

from __future__ import annotations

import time
from collections import defaultdict

from bench.harness import (
    Stack,
    api_client,
    follow_sse,
    log,
    make_users,
    median,
    percentile,
    result,
    submit,
    summary,
)
from bench.worker_shim import WORK_KEY

NAME = "orchestration_overhead"
WORK_STAGES = ("composing", "synthesizing", "mixing")
TARGET_P50_MS, TARGET_P99_MS = 30.0, 60.0


def work_seconds(stack: Stack, job_ids: list[str], timeout_s: float = 10.0) -> dict[str, dict[str, float]]:
    """{job_id: {"llm"|"tts"|"dsp"|"score": seconds}} noted by the worker shim (and cleared). The
    shim pushes a job's notes just after its terminal event, so the last job's may still be on
    their way."""
    r = stack.redis()
    deadline = time.monotonic() + timeout_s
    while True:
        out: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for line in r.lrange(WORK_KEY, 0, -1):
            job_id, what, seconds = line.split()
            out[job_id][what] += float(seconds)
        if all(out[j].get("dsp") for j in job_ids) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    r.delete(WORK_KEY)
    return out


def measure(stack: Stack, api_url: str, n: int, warmup: int = 3) -> list[dict]:
    users = make_users(stack, 4)
    stack.redis().delete(WORK_KEY)
    rows = []
    with api_client(api_url) as client:
        for i in range(warmup + n):
            user = users[i % len(users)]
            t0 = time.time()
            sub = submit(client, user, f"orch-{i}")
            t_sub = time.time()
            events = follow_sse(client, user, sub["events_url"])
            t_end, last = events[-1]
            if last["state"] != "succeeded":
                raise RuntimeError(f"perform failed: {last.get('error')}")
            if i < warmup:
                continue
            rows.append({"job_id": sub["job_id"], "total_s": t_end - t0, "submit_ms": (t_sub - t0) * 1000,
                         "t_sub": t_sub, "t_end": t_end, "timings": last.get("timings") or {}})
    jobs = {d["_id"]: d for d in stack.db()["jobs"].find({"_id": {"$in": [r["job_id"] for r in rows]}},
                                                         {"started_at": 1, "finished_at": 1})}
    work = work_seconds(stack, [r["job_id"] for r in rows])
    for row in rows:
        parts = work.get(row["job_id"]) or {}
        if not parts.get("dsp"):
            raise RuntimeError("the worker shim noted no work for a job (is the worker started with shim=True?)")
        row["work_ms"] = sum(parts.values()) * 1000
        row["parts_ms"] = {k: v * 1000 for k, v in parts.items()}
        row["total_ms"] = row.pop("total_s") * 1000
        row["overhead_ms"] = row["total_ms"] - row["work_ms"]
        row["stage_work_ms"] = sum(row["timings"].get(s, 0.0) for s in WORK_STAGES) * 1000
        # the two ends outside the job's stages (MongoDB datetimes: millisecond precision):
        # 202 received -> the worker's start write (broker hand-off, prefork dispatch, task set-up),
        # and the worker's finish time -> the terminal event read from SSE (the finish write,
        # the Redis publish, the API's SSE loop, the client)
        doc = jobs.get(row["job_id"]) or {}
        t_sub, t_end = row.pop("t_sub"), row.pop("t_end")
        if doc.get("started_at") and doc.get("finished_at"):
            row["pickup_ms"] = (doc["started_at"].timestamp() - t_sub) * 1000
            row["tail_ms"] = (t_end - doc["finished_at"].timestamp()) * 1000
    return rows


def run(stack: Stack, quick: bool) -> dict:
    n = 12 if quick else 60
    api_url = stack.ensure_api()
    stack.provider_latency(llm_s=0.0, tts_s=0.0)
    stack.ensure_worker("shim", queues=("perform",), concurrency=2, shim=True)  # shared with push_latency
    rows = measure(stack, api_url, n)
    overhead = [r["overhead_ms"] for r in rows]
    work = [r["work_ms"] for r in rows]
    stages = sorted({s for r in rows for s in r["timings"]})
    stage_ms = {s: round(median([r["timings"].get(s, 0.0) * 1000 for r in rows]), 1) for s in stages}
    p50, p99 = percentile(overhead, 50), percentile(overhead, 99)
    log(f"{NAME}: overhead p50 {p50:.1f} ms p99 {p99:.1f} ms; stages {stage_ms}")
    return result(
        NAME, value=p50, baseline=median(work), ratio=p50 / median(work), unit="ms",
        target=f"overhead p50 <= {TARGET_P50_MS:.0f} ms and p99 <= {TARGET_P99_MS:.0f} ms",
        met=p50 <= TARGET_P50_MS and p99 <= TARGET_P99_MS,
        p99_ms=round(p99, 1), overhead_ms=summary(overhead, 1), total_ms=summary([r["total_ms"] for r in rows], 1),
        work_ms=summary(work, 1), submit_ms=summary([r["submit_ms"] for r in rows], 1),
        work_parts_median_ms={k: round(median([r["parts_ms"].get(k, 0.0) for r in rows]), 1)
                              for k in ("llm", "tts", "dsp", "score")},
        stage_median_ms=stage_ms,
        pickup_ms=summary([r["pickup_ms"] for r in rows if "pickup_ms" in r], 1),
        tail_ms=summary([r["tail_ms"] for r in rows if "tail_ms" in r], 1),
        overhead_by_stage_timings_ms=summary([r["total_ms"] - r["stage_work_ms"] for r in rows], 1),
        performs=len(rows), jobs_in_collection=stack.db()["jobs"].estimated_document_count(),
        note="baseline = median time inside provider calls + render_note (timed around the calls); "
             "ratio = overhead p50 / that")
