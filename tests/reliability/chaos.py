"""Building blocks for the reliability tests: stacks that own their stores, processes that can
be killed for real, and the checks that say "exactly one effect".

A `ChaosStack` is an API and Celery workers wired to a Redis server of its own (AOF on, fixed
port and data directory, so it can be stopped and started again as the same broker), the
session's MongoDB-wire server (or one of its own), and either the local providers or fresh
fake ElevenLabs/Gemini servers. Its time limits are short and its visibility timeout is set
just above them (BROKER_VISIBILITY_TIMEOUT_S), so a message whose worker was killed outright is
delivered again within a minute instead of twenty.

Its broker is that Redis, or RabbitMQ when given `broker_url` (a vhost of the session's node,
`on_rabbitmq_vhost`, or a node of the stack's own that a test can stop, `RestartableRabbitMQ`):
Redis then still holds results, job status, pub/sub and the pool.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from bson import ObjectId

from cli import devstack
from shared.config import QUEUES, Settings
from tests import samples
from tests.conftest import (
    REPO,
    UserFactory,
    Workers,
    api_client,
    make_settings,
    process_env,
    wait_job,
)

#: time limits of chaos stacks (soft limit = 24 s) and the visibility timeout above them
TIME_LIMIT_S = 30
VISIBILITY_S = 36


def wait_for(check: Callable[[], Any], timeout_s: float, what: str, every_s: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what} (last: {last!r})")


class RestartableRedis:
    """A redis-server with AOF on a fixed port and data directory: stop it, start it again, and
    it is the same broker with the same data (what a broker restart in production is)."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.data_dir, self.log_path = data_dir, log_path
        self.port = devstack.free_port()
        self.proc: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc, self.url = devstack.start_redis(self.data_dir, self.port, appendonly=True,
                                                   log_path=self.log_path)

    def stop(self) -> None:
        if self.proc is not None:
            devstack.stop_process(self.proc, grace_s=10)
            self.proc = None


class RestartableRabbitMQ(devstack.RabbitMQ):
    """A RabbitMQ node of the stack's own: `stop()` then `start()` is the same node, with the same
    ports and data (its quorum queues keep their messages)."""


def rabbitmq_vhost(request) -> str:
    """An AMQP URL for a stack of its own on the session's RabbitMQ node (a vhost nobody else uses)."""
    return request.getfixturevalue("rabbitmq").new_vhost_url()


class RestartableMongo:
    """The embedded MongoDB-wire server on a fixed port and data directory."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.data_dir, self.log_path = data_dir, log_path
        self.port = devstack.free_port()
        self.proc: subprocess.Popen | None = None
        self.url = devstack.embedded_mongo_url(self.port)

    def start(self) -> None:
        self.proc, self.url = devstack.start_mongo(self.data_dir, self.port, log_path=self.log_path)

    def stop(self) -> None:
        if self.proc is not None:
            devstack.stop_process(self.proc, grace_s=15)
            self.proc = None


@dataclass
class ChaosStack:
    env: dict[str, str]
    settings: Settings
    client: httpx.Client
    users: UserFactory
    workers: Workers
    redis: RestartableRedis
    api_url: str
    broker: Any = None  # what a broker restart stops: the RestartableRedis or a RestartableRabbitMQ
    fake: Any = None  # FakeElevenLabs when the stack uses the fake providers
    gemini: Any = None
    tmp: Path = field(default_factory=Path)

    @property
    def db(self):
        return self.users.db

    def rds(self):
        from shared.stores import redis_client

        return redis_client(self.settings)

    @property
    def on_rabbitmq(self) -> bool:
        from shared.jobs.broker import is_amqp

        return is_amqp(self.settings.celery_broker_url)

    def send(self, task: str, job_id: str, queue: str) -> None:
        """Deliver a job's task message (again), as the broker would."""
        from shared.jobs.celery_app import producer_for

        producer_for(self.settings.celery_broker_url).send_task(task, args=[job_id], queue=queue, task_id=job_id)

    def start_worker(self, name: str, concurrency: int = 2, **extra_env: str) -> subprocess.Popen:
        return self.workers.start_ready(name, self.rds(), QUEUES, concurrency=concurrency,
                                        broker_url=self.settings.celery_broker_url, **extra_env)

    def ready(self) -> httpx.Response:
        return self.client.get("/health/ready", timeout=30)


@contextlib.contextmanager
def chaos_stack(base_env: dict[str, str], tmp: Path, *, fake_providers: bool = True, concurrency: int = 2,
                mongo_url: str | None = None, worker: bool = True, voice_limit: int = 100,
                broker_url: str = "", rabbitmq: RestartableRabbitMQ | None = None,
                **env_overrides: str) -> Iterator[ChaosStack]:
    """API (in process, over loopback HTTP) + one worker for every queue + its own Redis; the
    broker is that Redis, or RabbitMQ at `broker_url` (or `rabbitmq`'s first vhost)."""
    from api.main import create_app
    from shared.bootstrap import ensure_indexes
    from shared.stores import mongo_db
    from tests.fakes.server import serve

    tmp.mkdir(parents=True, exist_ok=True)
    broker = RestartableRedis(tmp / "redis", tmp / "redis.log")
    broker.start()
    with contextlib.ExitStack() as stack:
        stack.callback(broker.stop)
        env = {**base_env, "REDIS_URL": broker.url, "MONGO_DB": f"{base_env['MONGO_DB']}_{uuid.uuid4().hex[:6]}",
               "CLONE_TIME_LIMIT_S": str(TIME_LIMIT_S), "PERFORM_TIME_LIMIT_S": str(TIME_LIMIT_S),
               "CLEANUP_TIME_LIMIT_S": str(TIME_LIMIT_S), "MAINTENANCE_TIME_LIMIT_S": str(TIME_LIMIT_S),
               "BROKER_VISIBILITY_TIMEOUT_S": str(VISIBILITY_S), "READINESS_TIMEOUT_S": "5"}
        if mongo_url:
            env["MONGO_URL"] = mongo_url
        if rabbitmq is not None:
            broker_url = rabbitmq.url(rabbitmq.vhosts[0])
        if broker_url:
            env["BROKER_URL"] = broker_url
        fake = gemini = None
        if fake_providers:
            from tests.fakes.elevenlabs import FakeElevenLabs
            from tests.fakes.elevenlabs import create_app as fake_app
            from tests.fakes.gemini import running_fake_gemini

            fake = FakeElevenLabs(api_key="fake-eleven-key", voice_limit=voice_limit)
            fake_url = stack.enter_context(serve(fake_app(fake)))
            gemini, gemini_url = stack.enter_context(running_fake_gemini("fake-gemini-key"))
            env.update({"VOICE_PROVIDER": "elevenlabs", "ELEVEN_LABS_API_KEY": "fake-eleven-key",
                        "ELEVEN_LABS_BASE_URL": fake_url, "POOL_CAPACITY": str(voice_limit),
                        "TEXT_PROVIDER": "gemini", "GEMINI_API_KEY": "fake-gemini-key",
                        "GEMINI_BASE_URL": gemini_url, "GEMINI_TIMEOUT_S": "10"})
        env.update(env_overrides)
        settings = make_settings(env)
        db = mongo_db(settings)
        ensure_indexes(db)
        pool = Workers(process_env(env), tmp)
        stack.callback(pool.stop_all)
        api_url = stack.enter_context(serve(create_app(settings)))
        client = stack.enter_context(api_client(api_url, timeout=60))
        chaos = ChaosStack(env=env, settings=settings, client=client, users=UserFactory(client, db), workers=pool,
                           redis=broker, api_url=api_url, fake=fake, gemini=gemini, tmp=tmp,
                           broker=rabbitmq if rabbitmq is not None else broker)
        if worker:
            chaos.start_worker("w1", concurrency)
        yield chaos


# ------------------------------------------------------------------ users, jobs


def upload(stack: ChaosStack, headers: dict, data: bytes | None = None, name: str = "sample.mp3") -> httpx.Response:
    return stack.client.post("/user/voice", headers=headers,
                             files={"file": (name, data if data is not None else samples.original(), "audio/mpeg")})


def user_with_voice(stack: ChaosStack, monthly_limit: int | None = None) -> tuple[dict, dict]:
    user, headers = stack.users()
    resp = upload(stack, headers)
    assert resp.status_code == 202, resp.text
    job = wait_job(stack.client, resp.json()["job_id"], headers, timeout_s=120)
    assert job["state"] == "succeeded", job
    if monthly_limit is not None:
        stack.db["users"].update_one({"_id": ObjectId(user["id"])}, {"$set": {"monthlyLimit": monthly_limit}})
    return user, headers


def perform(stack: ChaosStack, headers: dict, topic: str = "my first 10k run", **extra) -> httpx.Response:
    return stack.client.post("/perform", headers={**headers, **extra},
                             json={"routine_type": "morning_motivation", "topic": topic})


def job_doc(stack: ChaosStack, job_id: str) -> dict:
    return stack.db["jobs"].find_one({"_id": job_id})


def assert_one_perform_effect(db, user_id: str, job_id: str) -> dict:
    """One charge (user counter and audit line agree), one recording, for this job."""
    charges = list(db["charges"].find({"_id": job_id}))
    assert len(charges) == 1 and charges[0]["state"] == "charged", charges
    user = db["users"].find_one({"_id": ObjectId(user_id)})
    assert user["charged_jobs"].count(job_id) == 1, user["charged_jobs"]
    assert db["recordings"].count_documents({"job_id": job_id}) == 1
    return charges[0]


def our_remote_voices(fake, user_id: str) -> list:
    """The user's voices at the fake provider (our names are nv-<user>-<sha12>-<rec6>)."""
    return [v for v in fake.voices if v.category == "cloned" and v.name.startswith(f"nv-{user_id}-")]


def provider_calls(fake, operation: str, since: int = 0) -> list:
    return [c for c in fake.calls[since:] if c.operation == operation]


# ------------------------------------------------------------------ processes


def pool_children(worker: subprocess.Popen) -> list[psutil.Process]:
    return [p for p in psutil.Process(worker.pid).children() if p.is_running()]


def pid_running(stack: ChaosStack, job_id: str, timeout_s: float = 15) -> int:
    """The pool child executing the job's task, as the worker itself reports it."""
    from shared.jobs.celery_app import producer_for

    app = producer_for(stack.settings.celery_broker_url)

    def find():
        for tasks in (app.control.inspect(timeout=1.0).active() or {}).values():
            for task in tasks:
                if task.get("id") == job_id and task.get("worker_pid"):
                    return task["worker_pid"]
        return None

    return wait_for(find, timeout_s, f"a worker to report job {job_id} active", every_s=0.2)


def sigkill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def worker_of(stack: ChaosStack, pid: int) -> str:
    """The name of the worker whose pool child (or parent) is `pid`."""
    parent = psutil.Process(pid).ppid()
    for name, proc in stack.workers.procs.items():
        if proc.pid in (pid, parent):
            return name
    raise AssertionError(f"no worker of this stack runs pid {pid}")


def kill_worker_outright(stack: ChaosStack, name: str) -> None:
    """SIGKILL the worker's parent and every pool child at once: no warm shutdown, no ack,
    no requeue. Redis keeps the unacked message until the visibility timeout; RabbitMQ sees the
    connection close and puts it back in the queue at once."""
    proc = stack.workers.procs.pop(name)
    children = pool_children(proc)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    for child in children:
        sigkill(child.pid)
    proc.wait(timeout=10)
    psutil.wait_procs(children, timeout=10)


def freeze_worker(stack: ChaosStack, name: str) -> None:
    """SIGSTOP the worker's parent and every pool child: a host that stops answering without
    closing its connections (power cut, kernel hang, a cable pulled). Kill it afterwards with
    `kill_worker_outright` (SIGKILL ends stopped processes too)."""
    proc = stack.workers.procs[name]
    for p in (psutil.Process(proc.pid), *pool_children(proc)):
        with contextlib.suppress(psutil.NoSuchProcess):
            p.suspend()


def rss_mb(procs: list[psutil.Process]) -> float:
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total / 1e6


def tree(proc: subprocess.Popen) -> list[psutil.Process]:
    parent = psutil.Process(proc.pid)
    return [parent, *parent.children(recursive=True)]


def spawn_api(env: dict[str, str], log_path: Path, *, host: str = "127.0.0.1",
              launcher: tuple[str, ...] = ()) -> tuple[subprocess.Popen, str]:
    """The API as its own uvicorn process (what production runs), so its memory can be read;
    listening on `host`, run through `launcher` (tests/hosts: on the API host's namespace)."""
    port = devstack.free_port()
    proc = devstack.spawn([*launcher, sys.executable, "-m", "uvicorn", "api.main:app", "--host", host,
                           "--port", str(port), "--no-access-log"], env=process_env(env), cwd=str(REPO),
                          log_path=log_path)
    url = f"http://{host}:{port}"
    devstack.wait_until(lambda: httpx.get(f"{url}/health", timeout=1).status_code == 200, 60, "API", proc)
    return proc, url
