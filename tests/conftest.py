"""Real parts for the suite: a Redis and a MongoDB-wire server over sockets, real Celery
worker processes and the API served over HTTP on loopback.

Stores are started by the tests themselves (the same launchers `make run` uses), so the
suite needs nothing running beforehand; MONGO_URL may point at a real mongod instead of the
embedded server. Each session uses its own database name.

The session stack's broker is Redis (as in `make run`). Tests that must hold on both brokers
take `on_broker` (parametrized "redis" and "rabbitmq"): its RabbitMQ side is a private
`rabbitmq-server` node, started the first time a test asks for it and shared by the session,
with a vhost for each stack that uses it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cli import devstack
from shared.config import QUEUES, Settings

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures" / "voice"
SAMPLE = FIXTURES / "sample_en_49s.mp3"
#: a second real speaker (fixtures/voice/SOURCES.md), for samples that hold two voices
SECOND_SPEAKER = FIXTURES / "librivox_austen_25s.mp3"
TEST_JWT_SECRET = "test-secret-" + "x" * 40


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("nv")


@pytest.fixture(scope="session")
def redis_url(tmp_root) -> Iterator[str]:
    proc, url = devstack.start_redis(tmp_root / "redis", appendonly=False)
    yield url
    devstack.stop_process(proc)


@pytest.fixture(scope="session")
def mongo_url(tmp_root) -> Iterator[str]:
    if os.environ.get("MONGO_URL"):
        yield os.environ["MONGO_URL"]
        return
    proc, url = devstack.start_mongo(tmp_root / "mongo", log_path=tmp_root / "mongo.log")
    yield url
    devstack.stop_process(proc)


#: vhosts of the session's RabbitMQ node: "/" for the session stack, the others handed out to
#: stacks of their own (tests/reliability), one each
RABBIT_VHOSTS = ("/", *(f"nv{i}" for i in range(1, 9)))


class RabbitBroker:
    """The session's RabbitMQ node and its vhosts, handed out one per stack."""

    def __init__(self, node: devstack.RabbitMQ) -> None:
        self.node = node
        self._free = list(node.vhosts[1:])

    def new_vhost_url(self) -> str:
        if not self._free:
            raise RuntimeError("every vhost of the session's RabbitMQ is taken; add to RABBIT_VHOSTS")
        return self.node.url(self._free.pop(0))


@pytest.fixture(scope="session")
def rabbitmq(tmp_root) -> Iterator[RabbitBroker]:
    """A private rabbitmq-server node for the session (several seconds to start: only when a
    test on the RabbitMQ broker asks for it)."""
    node, _ = devstack.start_rabbitmq(tmp_root / "rabbitmq", vhosts=RABBIT_VHOSTS,
                                      log_path=tmp_root / "rabbitmq.log")
    try:
        yield RabbitBroker(node)
    finally:
        node.stop()


def stack_env(redis_url: str, mongo_url: str) -> dict[str, str]:
    """Settings for the processes a test stack spawns (workers, API, CLI), as env vars."""
    return {
        "APP_ENV": "test",
        "REDIS_URL": redis_url,
        "MONGO_URL": mongo_url,
        "MONGO_DB": f"nvtest_{uuid.uuid4().hex[:8]}",
        "JWT_SECRET": TEST_JWT_SECRET,
        "LOG_LEVEL": "INFO",
        "READINESS_TIMEOUT_S": "8",
        "MONGO_TIMEOUT_MS": "3000",
        # many test users hold voices at once; the pool tests set their own small limits
        "LOCAL_VOICE_LIMIT": "500",
        "POOL_CAPACITY": "500",
        # every test user comes from 127.0.0.1, some fire 20 performs at once or upload again
        # right after a clone: the shared stack gets roomy limits and no post-clone cooldown;
        # tests/security builds its own apps with small ones
        "RATE_LIMIT_UPLOAD": "1000/1m",
        "UPLOAD_COOLDOWN_S": "0",
        "RATE_LIMIT_PERFORM": "1000/1m",
        "RATE_LIMIT_LOGIN_IP": "10000/1m",
        "RATE_LIMIT_LOGIN_USER": "1000/1m",
        "RATE_LIMIT_REGISTER_IP": "10000/1m",
        # the espeak stand-in always scores "far": with a floor, every local test clone is
        # flagged, which tests/voice/test_voice_match.py checks end to end
        "VOICE_MATCH_FLOOR": "35",
    }


@pytest.fixture(scope="session")
def base_env(redis_url, mongo_url) -> dict[str, str]:
    """Environment for processes we spawn (workers, CLI): settings travel as env vars."""
    return stack_env(redis_url, mongo_url)


def make_settings(env: dict[str, str], **overrides) -> Settings:
    values = {k.lower(): v for k, v in env.items()}
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture(scope="session")
def settings(base_env) -> Settings:
    return make_settings(base_env)


@pytest.fixture(scope="session")
def db(settings):
    from shared.bootstrap import ensure_indexes
    from shared.stores import mongo_db

    database = mongo_db(settings)
    ensure_indexes(database)
    return database


@pytest.fixture(scope="session")
def rds(settings):
    from shared.stores import redis_client

    return redis_client(settings)


def process_env(base_env: dict[str, str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGO_", "REDIS_"))}
    env.update(base_env)
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Workers:
    """Celery worker processes started for the tests."""

    def __init__(self, env: dict[str, str], log_dir: Path, launcher: tuple[str, ...] = ()) -> None:
        self.env = env
        self.log_dir = log_dir
        self.launcher = launcher  # a prefix that runs them elsewhere (tests/hosts: `ip netns exec`)
        self.procs: dict[str, subprocess.Popen] = {}
        self.metrics_port: int | None = None  # the session worker's exporter (tests/ops)

    def start(self, name: str, queues=QUEUES, concurrency: int = 2, **extra_env: str) -> subprocess.Popen:
        env = {**self.env, **extra_env}
        proc = devstack.spawn([*self.launcher, *devstack.worker_argv(list(queues), name, concurrency, "INFO")], env=env,
                              cwd=str(REPO), log_path=self.log_dir / f"worker-{name}.log")
        self.procs[name] = proc
        return proc

    def start_ready(self, name: str, rds_client, queues=QUEUES, concurrency: int = 2, broker_url: str = "",
                    **extra_env: str) -> subprocess.Popen:
        """Start a worker and wait until a canary on each of its queues is answered (its log goes
        to stderr if none is); the broker is `rds_client`'s Redis unless `broker_url` is given."""
        proc = self.start(name, queues, concurrency, **extra_env)
        try:
            wait_ready(rds_client, queues, broker_url=broker_url)
        except RuntimeError:
            print(self.log(name)[-5000:], file=sys.stderr)
            raise
        return proc

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None:
            devstack.stop_process(proc, grace_s=10)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def log(self, name: str) -> str:
        path = self.log_dir / f"worker-{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def wait_ready(rds_client, queues=QUEUES, timeout_s: float = 60, broker_url: str = "") -> None:
    """Until a worker answers a canary on every queue (the broker is that Redis unless given)."""
    from shared.jobs.canary import probe_queues

    url = broker_url or "redis://{host}:{port}/{db}".format(**rds_client.connection_pool.connection_kwargs)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(r["ok"] for r in probe_queues(rds_client, 2.0, queues, broker_url=url).values()):
            return
    raise RuntimeError(f"workers for {queues} did not answer within {timeout_s} s")


@pytest.fixture(scope="session")
def workers(base_env, tmp_root, rds, db) -> Iterator[Workers]:
    """One real worker process consuming every queue (prefork, two children)."""
    pool = Workers(process_env(base_env), tmp_root)
    # its prefork children write metrics to files the parent serves (docs/METRICS.md)
    pool.metrics_port = devstack.free_port()
    pool.start_ready("all", rds, QUEUES, concurrency=2, WORKER_METRICS_PORT=str(pool.metrics_port),
                     PROMETHEUS_MULTIPROC_DIR=str(tmp_root / "worker-metrics"))
    yield pool
    pool.stop_all()


@pytest.fixture(scope="session")
def api_url(settings, db) -> Iterator[str]:
    from api.main import create_app
    from tests.fakes.server import serve

    with serve(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="session")
def rabbit_env(base_env, rabbitmq) -> dict[str, str]:
    """The session stack's settings with RabbitMQ as the broker (Redis still holds results,
    job status, pub/sub and the pool)."""
    return {**base_env, "BROKER_URL": rabbitmq.node.url("/")}


@pytest.fixture(scope="session")
def rabbit_workers(rabbit_env, tmp_root, rds, db) -> Iterator[Workers]:
    """One real worker process consuming every queue from RabbitMQ (prefork, two children)."""
    pool = Workers(process_env(rabbit_env), tmp_root)
    pool.start_ready("rabbit", rds, QUEUES, concurrency=2, broker_url=rabbit_env["BROKER_URL"])
    yield pool
    pool.stop_all()


@pytest.fixture(scope="session")
def rabbit_api_url(rabbit_env, db) -> Iterator[str]:
    from api.main import create_app
    from tests.fakes.server import serve

    with serve(create_app(make_settings(rabbit_env))) as url:
        yield url


@dataclass
class BrokerStack:
    """The session's API and worker on one broker: `broker` is "redis" or "rabbitmq"."""

    broker: str
    client: httpx.Client
    users: UserFactory
    workers: Workers
    worker_name: str
    settings: Settings


@pytest.fixture(params=["redis", "rabbitmq"])
def on_broker(request, db) -> Iterator[BrokerStack]:
    """The test runs once on each broker (the RabbitMQ side is started on first use)."""
    if request.param == "redis":
        api, workers, settings, name = (request.getfixturevalue("api_url"), request.getfixturevalue("workers"),
                                        request.getfixturevalue("settings"), "all")
    else:
        api, workers, name = request.getfixturevalue("rabbit_api_url"), request.getfixturevalue("rabbit_workers"), \
            "rabbit"
        settings = make_settings(request.getfixturevalue("rabbit_env"))
    with api_client(api, timeout=30) as c:
        yield BrokerStack(request.param, c, UserFactory(c, db), workers, name, settings)


def api_client(base_url: str, **kwargs) -> httpx.Client:
    """An httpx client for one of our API processes: every answer it receives is checked
    against the published schema (tests/contract/conformance.py)."""
    from tests.contract.conformance import contract

    return httpx.Client(base_url=base_url, event_hooks={"response": [contract().check]}, **kwargs)


@pytest.fixture(autouse=True)
def _answers_match_the_schema() -> Iterator[None]:
    """Fails the test during which any API answer did not match the published schema."""
    from tests.contract.conformance import contract

    if contract.cache_info().currsize == 0:  # nothing has talked to an API yet: nothing to load
        seen = 0
    else:
        seen = len(contract().violations)
    yield
    if contract.cache_info().currsize:
        new = contract().violations[seen:]
        if new:
            pytest.fail("answers that do not match the published schema (docs/openapi.json):\n"
                        + "\n".join(f"  {v}" for v in new[:20]), pytrace=False)


@pytest.fixture()
def client(api_url) -> Iterator[httpx.Client]:
    with api_client(api_url, timeout=30) as c:
        yield c


class UserFactory:
    def __init__(self, client: httpx.Client, db) -> None:
        self.client = client
        self.db = db

    def code(self) -> str:
        from shared.users.codes import create_codes

        return create_codes(self.db, 1, 30)[0]

    def register(self, **overrides) -> dict:
        name = overrides.pop("username", f"u{uuid.uuid4().hex[:10]}")
        body = {"username": name, "email": f"{name}@example.com", "password": "correct horse 1",
                "activation_code": self.code(), **overrides}
        resp = self.client.post("/auth/register", json=body)
        assert resp.status_code == 201, resp.text
        return {**body, "id": resp.json()["id"]}

    def login(self, username: str, password: str = "correct horse 1") -> dict[str, str]:
        resp = self.client.post("/auth/login", json={"username": username, "password": password})
        assert resp.status_code == 200, resp.text
        return {"Authorization": f"Bearer {resp.json()['access_token']}"}

    def __call__(self, role: str = "user", **overrides) -> tuple[dict, dict[str, str]]:
        """Register and log in a fresh user; returns (user, auth headers)."""
        user = self.register(**overrides)
        if role != "user":
            from shared.users.repository import set_role

            set_role(self.db, user["username"], role)
        return user, self.login(user["username"])


@pytest.fixture()
def new_user(client, db) -> UserFactory:
    return UserFactory(client, db)


def read_sse(client: httpx.Client, url: str, headers: dict, timeout_s: float = 120,
             sink: list | None = None) -> list[dict]:
    """Follow an SSE stream to its end; returns the job views received, in order (also
    appended to `sink` as they arrive, for a reader running in another thread)."""
    import json

    from tests.contract.conformance import contract

    events = sink if sink is not None else []
    with client.stream("GET", url, headers=headers, timeout=timeout_s) as resp:
        assert resp.status_code == 200, resp.read()
        assert resp.headers["content-type"].startswith("text/event-stream")
        for line in resp.iter_lines():
            if line.startswith("data: "):
                contract().check_event(line[6:])
                events.append(json.loads(line[6:]))
    return events


def wait_job(client: httpx.Client, job_id: str, headers: dict, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}", headers=headers).json()
        if job["state"] in ("succeeded", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout_s} s: {job}")


class ProviderStack:
    """An API and a worker wired to the fake ElevenLabs and Gemini servers over loopback HTTP,
    on their own Redis database so their jobs never mix with the local-provider stack's."""

    def __init__(self, client: httpx.Client, fake, gemini, settings: Settings, users: UserFactory,
                 workers: Workers):
        self.client, self.fake, self.gemini, self.settings = client, fake, gemini, settings
        self.users, self.workers = users, workers
        self.db = users.db


@contextlib.contextmanager
def provider_stack(base_env, redis_url, tmp: Path, *, redis_db: int, voice_limit: int = 50,
                   concurrency: int = 2, **env_overrides: str) -> Iterator[ProviderStack]:
    """API + one worker for all queues wired to fresh fake ElevenLabs and Gemini servers."""
    from api.main import create_app
    from tests.fakes.elevenlabs import FakeElevenLabs
    from tests.fakes.elevenlabs import create_app as fake_app
    from tests.fakes.gemini import running_fake_gemini
    from tests.fakes.server import serve

    fake = FakeElevenLabs(api_key="fake-eleven-key", voice_limit=voice_limit)
    with serve(fake_app(fake)) as fake_url, running_fake_gemini("fake-gemini-key") as (gemini, gemini_url):
        env = {**base_env, "REDIS_URL": redis_url.rsplit("/", 1)[0] + f"/{redis_db}",
               "VOICE_PROVIDER": "elevenlabs", "ELEVEN_LABS_API_KEY": "fake-eleven-key",
               "ELEVEN_LABS_BASE_URL": fake_url, "TEXT_PROVIDER": "gemini", "GEMINI_API_KEY": "fake-gemini-key",
               "GEMINI_BASE_URL": gemini_url, "GEMINI_TIMEOUT_S": "10",
               # its own database: voice slots and users never mix with other stacks'
               "MONGO_DB": f"{base_env['MONGO_DB']}_s{redis_db}", **env_overrides}
        settings = make_settings(env)
        from shared.bootstrap import ensure_indexes
        from shared.stores import mongo_db, redis_client

        db = mongo_db(settings)
        ensure_indexes(db)
        redis_client(settings).flushdb()  # a clean slate for this stack's Redis database
        pool = Workers(process_env(env), tmp)
        pool.start(f"stack{redis_db}", QUEUES, concurrency=concurrency)
        try:
            wait_ready(redis_client(settings))
            with serve(create_app(settings)) as api, api_client(api, timeout=60) as c:
                yield ProviderStack(c, fake, gemini, settings, UserFactory(c, db), pool)
        finally:
            pool.stop_all()


@pytest.fixture(scope="module")
def eleven_stack(base_env, redis_url, db, tmp_path_factory) -> Iterator[ProviderStack]:
    with provider_stack(base_env, redis_url, tmp_path_factory.mktemp("eleven"), redis_db=1) as stack:
        yield stack


def pool_for(settings: Settings, db):
    """A VoicePool over the configured provider, as a worker builds it (for driving domain
    functions directly in tests)."""
    from shared.pool.service import VoicePool
    from shared.providers.factory import voice_provider
    from shared.stores import redis_client

    return VoicePool(db, redis_client(settings), voice_provider(settings, db), settings)
