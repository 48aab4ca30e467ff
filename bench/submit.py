"""Benchmark 1: the submit path, `POST /perform` (auth, validation, rate limit, quota check, job
record, status mirror, enqueue) under 32 concurrent keep-alive clients.

Baseline: a bare FastAPI `POST /perform` (bench/bare_app.py) served the same way: uvicorn in a
subprocess with the same flags and worker count. Both servers run side by side and take turns,
round by round (the order alternating), each round a fresh load-generator process
(bench/loadgen.py) with a warm-up that is not recorded. Each of the 32 clients is its own user.
No worker consumes during the run (it measures submit only); every answer must be 202.
A last product round runs open loop at 50 req/s (about ten times what the workers of this
machine can finish), for the latency at an offered load (closed loop, latency is just
32 / throughput: Little's law). The API process's CPU time over the closed-loop rounds, per
request, is measured with psutil.

Target: open loop at 50 req/s p99 <= 20 ms; at most 2 ms of API CPU per request; closed loop
at least 15% of the bare route's throughput.
"""

from __future__ import annotations

import json
import subprocess
import tempfile

from bench.harness import (
    PY,
    REPO,
    ROUTINE,
    Stack,
    cpu_seconds,
    log,
    make_users,
    median,
    percentile,
    result,
    summary,
)

NAME = "submit"
CLIENTS = 32
OPEN_LOOP_RPS, TARGET_P99_MS, TARGET_CPU_MS, TARGET_SHARE = 50.0, 20.0, 2.0, 0.15


def load(url: str, users, duration_s: float, warmup_s: float, rate: float | None = None) -> dict:
    host, port = url.removeprefix("http://").split(":")
    spec = {"host": host, "port": int(port), "method": "POST", "path": "/perform", "concurrency": CLIENTS,
            "warmup_s": warmup_s, "duration_s": duration_s, "rate": rate,
            "bodies": [json.dumps({"routine_type": ROUTINE, "topic": "my first 10k run, take {n}"})],
            "headers": [u.headers for u in users]}
    with tempfile.NamedTemporaryFile("w", suffix=".json") as fh:
        json.dump(spec, fh)
        fh.flush()
        proc = subprocess.run([PY, "-m", "bench.loadgen", fh.name], capture_output=True, text=True, cwd=str(REPO),
                              timeout=duration_s + warmup_s + 120)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def run(stack: Stack, quick: bool, workers: int = 1) -> dict:
    rounds, duration_s, warmup_s = (2, 3.0, 1.0) if quick else (5, 10.0, 2.0)
    stack.stop_workers()  # submit only: the jobs are accepted and left queued
    api_url = stack.ensure_api()
    bare_url = stack.urls.get("bare") or stack.start_api("bare", app="bench.bare_app:app", workers=workers)
    users = make_users(stack, CLIENTS)
    queued_before = stack.redis().llen("perform")
    runs: dict[str, list[dict]] = {"product": [], "bare": []}
    api_cpu_s, api_requests = 0.0, 0
    for r in range(rounds):
        order = [("product", api_url), ("bare", bare_url)]
        for target, url in (order if r % 2 == 0 else order[::-1]):
            cpu_before = cpu_seconds([stack.pid("api")]) if target == "product" else 0.0
            out = load(url, users, duration_s, warmup_s)
            if target == "product":  # warm-up requests included: CPU is counted over the whole load
                api_cpu_s += cpu_seconds([stack.pid("api")]) - cpu_before
                api_requests += sum(out["statuses"].values())
            bad = {k: v for k, v in out["statuses"].items() if k != "202"}
            if bad or out["errors"]:
                raise RuntimeError(f"{target}: non-202 answers {bad} errors {out['errors']}")
            runs[target].append(out)
            log(f"{NAME} round {r + 1}/{rounds} {target}: {out['rps']:.0f} req/s "
                f"p50 {percentile(out['latencies_ms'], 50):.1f} ms p99 {percentile(out['latencies_ms'], 99):.1f} ms")
    # Latency at a fixed offered rate (open loop): with 32 clients always waiting, latency is
    # 32 / throughput whatever the code (Little's law).
    rate = OPEN_LOOP_RPS
    paced = load(api_url, users, duration_s, warmup_s, rate=rate)
    log(f"{NAME} product at {rate} req/s (open loop): p50 {percentile(paced['latencies_ms'], 50):.1f} ms "
        f"p99 {percentile(paced['latencies_ms'], 99):.1f} ms")
    accepted = stack.redis().llen("perform") - queued_before
    stack.purge_queue("perform")  # no worker will ever run these

    def agg(target):
        lat = [x for o in runs[target] for x in o["latencies_ms"]]
        return {"rps_median": round(median([o["rps"] for o in runs[target]]), 1),
                "rps_rounds": [round(o["rps"], 1) for o in runs[target]],
                "p99_rounds_ms": [round(percentile(o["latencies_ms"], 99), 1) for o in runs[target]],
                "latency_ms": summary(lat, 1)}

    product, bare = agg("product"), agg("bare")
    p99 = product["latency_ms"]["p99"]
    open_p99 = percentile(paced["latencies_ms"], 99)
    cpu_ms = api_cpu_s / api_requests * 1000 if api_requests else float("nan")
    share = product["rps_median"] / bare["rps_median"]
    log(f"{NAME}: API CPU {cpu_ms:.2f} ms per request over {api_requests} requests")
    return result(
        NAME, value=product["rps_median"], baseline=bare["rps_median"], ratio=share, unit="req/s",
        target=(f"open loop at {OPEN_LOOP_RPS:.0f} req/s p99 <= {TARGET_P99_MS:.0f} ms, <= {TARGET_CPU_MS:.0f} ms "
                f"API CPU per request, closed loop >= {TARGET_SHARE:.0%} of the bare route's req/s"),
        met=open_p99 <= TARGET_P99_MS and cpu_ms <= TARGET_CPU_MS and share >= TARGET_SHARE,
        p99_ms=p99, open_loop_p99_ms=round(open_p99, 1), api_cpu_ms_per_request=round(cpu_ms, 2),
        bare_p99_ms=bare["latency_ms"]["p99"], product=product, bare=bare,
        open_loop={"rate_rps": rate, "achieved_rps": round(paced["rps"], 1), "latency_ms": summary(paced["latencies_ms"], 1)},
        clients=CLIENTS, uvicorn_workers=workers, rounds=rounds, round_s=duration_s, warmup_s=warmup_s,
        jobs_enqueued=accepted,
        note="value/baseline = median req/s per round; p99 over all recorded requests")
