"""Benchmark 5: perform throughput near the machine's limit, with provider latency hidden by
concurrency.

N performs (200; 48 in quick mode) go through the API onto the perform queue while the fake
providers answer slowly: the LLM (fake Gemini) after 0.5 s, each TTS synthesis (fake
ElevenLabs) after 1 s. The perform worker is one Celery node, prefork pool with `CONCURRENCY`
processes: a job holds its process ~1.5 s waiting on providers and ~0.45 s of CPU (mostly
render_note), so 2 cores need about cores x (wait + CPU) / CPU = 9 busy processes; 12 leave room
for jobs stretched by CPU contention.

Throughput = jobs finished per second in the steady state, from the jobs' own started_at and
finished_at stamps: the finishes between the end of the first wave (the concurrency-th finish)
and the moment the queue ran dry (the last start), over that window; while the pool fills
(everyone waiting on providers) or drains (slots idle) the rate says nothing about the machine.
The end-to-end rate (N / (last finish - first submit)) is reported too.

The limit (baseline) is the machine's: cores / CPU seconds per job, the CPU being the perform
worker's (parent and pool children, user + system, psutil) over the run divided by N.
The CPU that the rest of the stack spent per job (API, Redis, SecantusDB) and the machine's
other load are reported beside it: they compete for the same cores.
Target: throughput >= 80% of the limit, and at most 0.35 worker CPU-s per job (30 s notes).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from bench.harness import (
    CORES,
    Stack,
    api_client,
    cpu_seconds,
    log,
    make_users,
    result,
    submit,
    wait_jobs_redis,
)

NAME = "throughput"
TARGET_SHARE = 0.80
TARGET_WORKER_CPU_S = 0.35
CONCURRENCY = 12
LLM_S, TTS_S = 0.5, 1.0


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def run(stack: Stack, quick: bool, concurrency: int = CONCURRENCY, pool: str = "prefork") -> dict:
    import psutil

    n = 48 if quick else 200
    stack.stop_workers()  # this worker's CPU is the measure: no other consumer on the queue
    api_url = stack.ensure_api()
    users = make_users(stack, 20)
    stack.provider_latency(llm_s=LLM_S, tts_s=TTS_S)
    worker = stack.start_worker("tput", ("perform",), concurrency=concurrency, pool=pool)
    groups = {"worker": [worker.pid], "api": [stack.pid("api")], "mongo": [stack.pid("mongo")],
              "redis": [stack.pid("redis")], "fakes": [stack.pid("fake_eleven"), stack.pid("fake_gemini")]}
    try:
        time.sleep(1.0)  # let the pool children settle before measuring
        cpu0 = {k: cpu_seconds(v) for k, v in groups.items()}
        sys0, wall0 = psutil.cpu_times(), time.time()
        job_ids: list[str] = []
        with api_client(api_url) as client, ThreadPoolExecutor(8) as submitters:
            t_submit = time.time()
            job_ids = list(submitters.map(lambda i: submit(client, users[i % len(users)], f"tput-{i}")["job_id"],
                                          range(n)))
            t_submitted = time.time()
        views = wait_jobs_redis(stack, job_ids, timeout_s=600)
        cpu1 = {k: cpu_seconds(v) for k, v in groups.items()}
        sys1, wall1 = psutil.cpu_times(), time.time()
    finally:
        stack.provider_latency(llm_s=0.0, tts_s=0.0)
        stack.stop("worker-tput")
    failed = [v for v in views.values() if v["state"] != "succeeded"]
    if failed:
        raise RuntimeError(f"{len(failed)} performs failed, e.g. {failed[0].get('error')}")
    finished = sorted(_ts(v["finished_at"]) for v in views.values())
    started = sorted(_ts(v["started_at"]) for v in views.values())
    end_to_end = n / (finished[-1] - t_submit)
    # Steady state: from the moment the first wave is through (the concurrency-th finish) to the
    # moment the queue ran dry (the last start); meanwhile every process that frees up takes
    # the next job at once. Before it the pool is filling (all waiting on providers), after it
    # draining (slots idle): neither says what the machine sustains.
    t_a, t_b = finished[min(concurrency, n) - 1], started[-1]
    in_window = sum(1 for f in finished if t_a < f <= t_b)
    steady_window = t_b - t_a >= 2.0 and in_window >= 5
    steady = in_window / (t_b - t_a) if steady_window else end_to_end
    cpu = {k: cpu1[k] - cpu0[k] for k in groups}
    worker_cpu_per_job = cpu["worker"] / n
    limit = CORES / worker_cpu_per_job
    stack_cpu_per_job = sum(cpu[k] for k in ("worker", "api", "mongo", "redis")) / n
    busy = lambda t: t.user + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0) + getattr(t, "nice", 0)
    machine_busy = busy(sys1) - busy(sys0)
    other = machine_busy - sum(cpu.values())
    share = steady / limit
    # other tenants of the machine (and the bench's own client) took `other` CPU-s meanwhile
    left_cores = max(0.1, (CORES * (wall1 - wall0) - max(0.0, other)) / (wall1 - wall0))
    log(f"{NAME}: {steady:.2f} jobs/s steady ({end_to_end:.2f} end to end); limit {limit:.2f} jobs/s "
        f"({worker_cpu_per_job:.3f} worker CPU-s/job); share {share:.0%}")
    return result(
        NAME, value=steady, baseline=limit, ratio=share, unit="jobs/s",
        target=(f">= {TARGET_SHARE:.0%} of the limit (cores / worker CPU-s per job) and <= "
                f"{TARGET_WORKER_CPU_S} worker CPU-s per job"),
        met=share >= TARGET_SHARE and worker_cpu_per_job <= TARGET_WORKER_CPU_S,
        performs=n, end_to_end_jobs_per_s=round(end_to_end, 3), submit_s=round(t_submitted - t_submit, 2),
        steady_window_s=round(t_b - t_a, 2) if steady_window else None, steady_window_jobs=in_window,
        worker_pool=pool, worker_concurrency=concurrency, cores=CORES,
        provider_latency_s={"llm": LLM_S, "tts_per_call": TTS_S},
        cpu_s_per_job={k: round(v / n, 4) for k, v in cpu.items()},
        stack_cpu_s_per_job=round(stack_cpu_per_job, 4),
        limit_with_stack_jobs_per_s=round(CORES / stack_cpu_per_job, 3),
        share_of_stack_limit=round(steady / (CORES / stack_cpu_per_job), 3),
        cores_left_by_other_load=round(left_cores, 2),
        share_of_limit_on_cores_left=round(steady / (left_cores / worker_cpu_per_job), 3),
        machine_cpu_s={"wall_s": round(wall1 - wall0, 2), "busy_cpu_s": round(machine_busy, 2),
                       "available_cpu_s": round(CORES * (wall1 - wall0), 2),
                       "outside_the_stack_cpu_s": round(other, 2)},
        note="value = steady-state jobs/s; baseline = the limit; ratio = value / limit")
