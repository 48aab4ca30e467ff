"""What the benchmarks share: the stack (Redis, SecantusDB, fake providers, API, workers, each in
its own process, started with the same launchers `make run` and the tests use), bench users
with ready voices, job helpers (submit, follow SSE), CPU/RSS sampling and statistics.

Every process runs with its working directory in the stack's temporary folder, so no `.env`
or `.data/stack.env` of the checkout leaks into the measurements; settings travel as
environment variables, as in production.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
CORES = len(os.sched_getaffinity(0))
BENCH_JWT_SECRET = "bench-secret-" + "b" * 40
ELEVEN_KEY = "bench-eleven-key"
GEMINI_KEY = "bench-gemini-key"
ROUTINE = "morning_motivation"


# ----------------------------------------------------------------------------- statistics


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(values: list[float], digits: int = 2) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50": round(percentile(values, 50), digits),
            "p90": round(percentile(values, 90), digits), "p99": round(percentile(values, 99), digits),
            "max": round(max(values), digits), "mean": round(statistics.fmean(values), digits)}


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def result(name: str, *, value: float, baseline: float | None, ratio: float | None, target: str, met: bool,
           unit: str, **details: Any) -> dict[str, Any]:
    """One benchmark's line in bench/results/latest.json."""
    def r(x):
        return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(x, 3)

    return {"name": name, "value": r(value), "baseline": r(baseline), "ratio": r(ratio), "target": target,
            "met": bool(met), "unit": unit, **details}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- processes


def proc_tree(pid: int) -> list:
    import psutil

    try:
        parent = psutil.Process(pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(pids: list[int]) -> float:
    """user+system CPU of these processes and all their live descendants, plus what their
    finished and reaped children used (ffmpeg runs, for one): a live child's time is not yet
    in its parent's children_* counters, so nothing is counted twice."""
    import psutil

    total = 0.0
    for pid in pids:
        for p in proc_tree(pid):
            with contextlib.suppress(psutil.NoSuchProcess):
                t = p.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
    return total


def rss_mb(pid: int, children: bool = True) -> dict[str, float]:
    """RSS of a process (and, for a worker, each pool child), in MB."""
    import psutil

    out = {}
    for p in (proc_tree(pid) if children else proc_tree(pid)[:1]):
        with contextlib.suppress(psutil.NoSuchProcess):
            out[str(p.pid)] = round(p.memory_info().rss / 2**20, 1)
    return out


class Stack:
    """Redis + SecantusDB + fake ElevenLabs + fake Gemini, then API and worker processes on demand."""

    def __init__(self, name: str = "bench") -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix=f"nv-{name}-"))
        self.logs = self.tmp / "logs"
        self.logs.mkdir()
        self.procs: dict[str, subprocess.Popen] = {}
        self.urls: dict[str, str] = {}
        self.env: dict[str, str] = {}

    # --- lifecycle ---

    def start(self) -> Stack:
        from cli import devstack

        proc, self.redis_url = devstack.start_redis(self.tmp / "redis", appendonly=False,
                                                    log_path=self.logs / "redis.log")
        self.procs["redis"] = proc
        proc, self.mongo_url = devstack.start_mongo(self.tmp / "mongo", log_path=self.logs / "mongo.log")
        self.procs["mongo"] = proc
        eleven_port, gemini_port = devstack.free_port(), devstack.free_port()
        self.procs["fake_eleven"] = self._spawn(
            [PY, "-m", "tests.fakes.elevenlabs", "--port", str(eleven_port), "--api-key", ELEVEN_KEY,
             "--voice-limit", "100000", "--character-limit", "1000000000"], "fake_eleven")
        self.procs["fake_gemini"] = self._spawn(
            [PY, "-m", "tests.fakes.gemini", "--port", str(gemini_port), "--api-key", GEMINI_KEY], "fake_gemini")
        self.urls["eleven"] = f"http://127.0.0.1:{eleven_port}"
        self.urls["gemini"] = f"http://127.0.0.1:{gemini_port}"
        self.env = self._base_env()
        for name in ("eleven", "gemini"):
            devstack.wait_until(lambda n=name: httpx.get(self.urls[n] + "/_fake/state" if n == "eleven"
                                                         else self.urls[n] + "/docs", timeout=1).status_code < 500,
                                30, f"fake {name}")
        from shared.bootstrap import ensure_indexes

        ensure_indexes(self.db())
        return self

    def close(self, keep_logs: bool = False) -> None:
        """Stop every process and remove the stack's folder; with `keep_logs` (or
        BENCH_KEEP_LOGS=1) the process logs are kept first, for reading a failure afterwards."""
        import shutil

        from cli import devstack

        for name in reversed(list(self.procs)):
            devstack.stop_process(self.procs.pop(name), grace_s=10)
        if keep_logs or os.environ.get("BENCH_KEEP_LOGS") == "1":
            kept = Path(tempfile.mkdtemp(prefix="nv-bench-logs-"))
            shutil.move(str(self.logs), str(kept / "logs"))
            log(f"process logs kept in {kept / 'logs'}")
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("MONGO_", "REDIS_", "ELEVEN", "GEMINI", "TEXT_", "VOICE_", "RATE_"))}
        env.update({
            "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1",
            "APP_ENV": "development", "LOG_LEVEL": "INFO", "JWT_SECRET": BENCH_JWT_SECRET,
            "REDIS_URL": self.redis_url, "MONGO_URL": self.mongo_url, "MONGO_DB": "nvbench",
            "MONGO_TIMEOUT_MS": "10000",
            "VOICE_PROVIDER": "elevenlabs", "ELEVEN_LABS_API_KEY": ELEVEN_KEY,
            "ELEVEN_LABS_BASE_URL": self.urls["eleven"],
            "TEXT_PROVIDER": "gemini", "GEMINI_API_KEY": GEMINI_KEY, "GEMINI_BASE_URL": self.urls["gemini"],
            "GEMINI_TIMEOUT_S": "20",
            "POOL_CAPACITY": "100000", "MONTHLY_CHAR_LIMIT": "100000000",
            # the benchmarks send thousands of notes from a few accounts on one IP
            "RATE_LIMIT_PERFORM": "100000000/1m", "RATE_LIMIT_UPLOAD": "100000/1m",
            "RATE_LIMIT_LOGIN_IP": "100000/1m", "RATE_LIMIT_REGISTER_IP": "100000/1m",
            "WORKER_METRICS_PORT": "0",
        })
        return env

    def _spawn(self, argv: list[str], name: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        from cli import devstack

        base = env if env is not None else {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        return devstack.spawn(argv, env=base, cwd=str(self.tmp), log_path=self.logs / f"{name}.log")

    def settings(self, **overrides):
        from shared.config import Settings

        values = {k.lower(): v for k, v in self.env.items() if k.isupper() and k.lower() in Settings.model_fields}
        values.update(overrides)
        return Settings(_env_file=None, **values)

    def db(self):
        from shared.stores import mongo_db

        return mongo_db(self.settings())

    def redis(self):
        from shared.stores import redis_client

        return redis_client(self.settings())

    # --- app processes ---

    def start_api(self, name: str = "api", app: str = "api.main:app", workers: int = 1,
                  **env_extra: str) -> str:
        from cli import devstack

        port = devstack.free_port()
        argv = [PY, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
        if workers > 1:
            argv += ["--workers", str(workers)]
        proc = self._spawn(argv, name, {**self.env, **env_extra})
        self.procs[name] = proc
        url = f"http://127.0.0.1:{port}"
        probe = "/health" if app.startswith("api.") else "/docs"
        devstack.wait_until(lambda: httpx.get(url + probe, timeout=2).status_code == 200, 60, name, proc)
        self.urls[name] = url
        return url

    def ensure_api(self) -> str:
        """The product API (one uvicorn process, as `make run` serves it), started once."""
        return self.urls.get("api") or self.start_api("api")

    def start_worker(self, name: str, queues: tuple[str, ...] = ("perform",), concurrency: int = 2,
                     pool: str = "prefork", shim: bool = False, wait: bool = True, **env_extra: str) -> subprocess.Popen:
        from cli import devstack

        argv = devstack.worker_argv(list(queues), name, concurrency, "INFO")
        if shim:  # the same worker, with JobStore publishes timestamped (bench/worker_shim.py)
            argv = [PY, "-m", "bench.worker_shim", *argv[3:]]
        if pool != "prefork":
            argv += ["--pool", pool]
        proc = self._spawn(argv, f"worker-{name}", {**self.env, **env_extra})
        self.procs[f"worker-{name}"] = proc
        if wait:
            self.wait_workers(queues, proc)
        return proc

    def ensure_worker(self, name: str, **kwargs) -> subprocess.Popen:
        """A worker shared by consecutive benchmarks (started once with these arguments)."""
        proc = self.procs.get(f"worker-{name}")
        if proc is not None and proc.poll() is None:
            return proc
        return self.start_worker(name, **kwargs)

    def stop_workers(self) -> None:
        """Stop every worker: a benchmark that counts a worker's CPU, or wants no consumer at
        all, must not share the queue with a worker left by the previous one."""
        for name in [n for n in self.procs if n.startswith("worker-")]:
            self.stop(name)

    def wait_workers(self, queues, proc=None, timeout_s: float = 90) -> None:
        from shared.jobs.canary import probe_queues

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"worker exited with code {proc.returncode}")
            if all(r["ok"] for r in probe_queues(self.redis(), 2.0, tuple(queues),
                                                 broker_url=self.redis_url).values()):
                return
        raise RuntimeError(f"workers for {queues} did not answer in {timeout_s} s")

    def stop(self, name: str) -> None:
        from cli import devstack

        proc = self.procs.pop(name, None)
        if proc is not None:
            devstack.stop_process(proc, grace_s=20)

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    # --- fakes ---

    def provider_latency(self, *, llm_s: float = 0.0, tts_s: float = 0.0) -> None:
        httpx.post(self.urls["gemini"] + "/_fake/latency", json={"seconds": llm_s}, timeout=5).raise_for_status()
        httpx.post(self.urls["eleven"] + "/_fake/latency", json={"seconds": tts_s, "operation": "synthesize"},
                   timeout=5).raise_for_status()

    def purge_queue(self, queue: str = "perform") -> int:
        r = self.redis()
        n = r.llen(queue)
        r.delete(queue)
        return n


# ----------------------------------------------------------------------------- users


@dataclass
class BenchUser:
    id: str
    token: str
    voice_id: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_users(stack: Stack, n: int, *, voice: bool = True) -> list[BenchUser]:
    """Accounts as registration makes them (shared.users.service.register's document, minus the
    password hash: benches never log in), each with a ready voice at the fake ElevenLabs created
    through the product's VoicePool, as a finished clone job leaves it."""
    import numpy as np
    from bson import Binary, ObjectId

    from shared.audio.codec import encode_mp3
    from shared.clock import now
    from shared.pool.service import VoicePool
    from shared.providers.factory import voice_provider
    from shared.clock import period_of
    from shared.users.schemas import UserSettings
    from shared.users.tokens import issue_token

    settings = stack.settings()
    db = stack.db()
    pool = VoicePool(db, stack.redis(), voice_provider(settings, db), settings)
    mp3 = encode_mp3(np.zeros(8000, dtype=np.float32), 16000, 64)
    v = np.random.default_rng(8).standard_normal(256)
    embedding = (v / np.linalg.norm(v)).astype("<f4").tobytes()
    users = []
    for _ in range(n):
        ts = now()
        name = f"bench{uuid.uuid4().hex[:10]}"
        oid = ObjectId()
        db["users"].insert_one({
            "_id": oid, "username": name, "username_lower": name, "email": f"{name}@example.com",
            "password_hash": "!bench-no-login", "role": "user", "settings": UserSettings().model_dump(mode="json"),
            "voice_state": "none", "voice_clone_id": None, "voice_clone_previous_id": None, "charCount": 0,
            "charsUsedRaw": 0, "monthlyLimit": settings.monthly_char_limit, "quota_period": period_of(ts),
            "created_at": ts, "updated_at": ts})
        user = BenchUser(str(oid), issue_token(settings, str(oid), "user")[0])
        if voice:
            sha = hashlib.sha256(user.id.encode()).hexdigest()
            record = pool.create_voice(user.id, sha, mp3, f"bench:{user.id}")
            db["users"].update_one({"_id": oid}, {"$set": {
                "voice_clone_id": record["voice_id"], "voice_record_id": record["_id"], "voice_state": "ready",
                # a finished clone keeps its sample's speaker embedding, and every note is then
                # scored against it (voice match, issue 17): the scoring costs the same whatever
                # the vector, so a fixed unit vector stands in for the sample's
                "sample.speaker_embedding": Binary(embedding)}})
            user.voice_id = record["voice_id"]
        users.append(user)
    return users


def perform_body(i: int | str = 0, routine: str = ROUTINE) -> dict[str, str]:
    return {"routine_type": routine, "topic": f"my first 10k run, attempt {i}"}


# ----------------------------------------------------------------------------- jobs


def submit(client: httpx.Client, user: BenchUser, i: int | str = 0, routine: str = ROUTINE) -> dict[str, Any]:
    resp = client.post("/perform", headers=user.headers, json=perform_body(i, routine))
    if resp.status_code != 202:
        raise RuntimeError(f"POST /perform answered {resp.status_code}: {resp.text[:300]}")
    return resp.json()


def follow_sse(client: httpx.Client, user: BenchUser, events_url: str, timeout_s: float = 120,
               on_event=None) -> list[tuple[float, dict]]:
    """Read the job's SSE stream to its end: [(receive time.time(), job view), ...]."""
    events = []
    with client.stream("GET", events_url, headers=user.headers, timeout=timeout_s) as resp:
        if resp.status_code != 200:
            raise RuntimeError(f"SSE answered {resp.status_code}")
        for line in resp.iter_lines():
            if line.startswith("data: "):
                item = (time.time(), json.loads(line[6:]))
                events.append(item)
                if on_event:
                    on_event(*item)
    return events


def wait_jobs_redis(stack: Stack, job_ids: list[str], timeout_s: float) -> dict[str, dict]:
    """Wait for every job to reach a terminal state, reading the Redis status mirror directly
    (no API polling load); returns the final views."""
    r = stack.redis()
    pending = set(job_ids)
    done: dict[str, dict] = {}
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        ids = list(pending)
        pipe = r.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(f"nv:job:{job_id}", "view")
        for job_id, raw in zip(ids, pipe.execute()):
            if raw:
                view = json.loads(raw)
                if view["state"] in ("succeeded", "failed"):
                    done[job_id] = view
                    pending.discard(job_id)
        if pending:
            time.sleep(0.1)
    if pending:
        raise RuntimeError(f"{len(pending)} of {len(job_ids)} jobs unfinished after {timeout_s} s")
    return done


@dataclass
class Sampler:
    """Samples a callable every `interval_s` seconds in a thread (for RSS/CPU time series)."""

    fn: Any
    interval_s: float = 0.5
    samples: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                self.samples.append((time.time(), self.fn()))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@contextlib.contextmanager
def api_client(url: str, timeout_s: float = 60) -> Iterator[httpx.Client]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    with httpx.Client(base_url=url, timeout=timeout_s, limits=limits) as client:
        yield client
