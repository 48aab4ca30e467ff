"""One set of hosts per test module (tests/hosts/netlab.py draws the network):

- store:   a RabbitMQ node (the broker, as in production), redis-server (results, job mirror,
           pub/sub, pool), the MongoDB-wire server, and the fake ElevenLabs and Gemini servers
           (the providers, reached over the network like the rest);
- api:     uvicorn serving api.main, on the front network for clients and the back for stores;
- worker1: a Celery worker on the perform and clone queues;
- worker2: a Celery worker on perform and clone, plus cleanup and maintenance.

Every service binds to its host's address, never loopback, so all traffic between hosts
crosses veth pairs and a bridge. The broker is only a URL (`BROKER_URL`): `broker_node()`
is a private RabbitMQ node on the store host (its own data directory, ports and epmd, inside
the store's namespace) and every host reaches it at the store's address.

Timeouts are the ones the service reads from its settings, kept short enough that a host that
lost the stores notices within seconds (MONGO_TIMEOUT_MS, REDIS_TIMEOUT_S) and that the broker
gives a lost host's job to another within a 30 s partition (BROKER_HEARTBEAT_S), and time limits
long enough that a 30 s partition is not mistaken for a hung job. The synthesis read timeout is
the default (120 s): the job does not wait for it, RabbitMQ hands it over.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cli import devstack
from shared.config import QUEUES, Settings
from tests.conftest import (
    REPO,
    UserFactory,
    Workers,
    api_client,
    make_settings,
    process_env,
    stack_env,
)
from tests.hosts import netlab

ELEVEN_KEY = "fake-eleven-key"
GEMINI_KEY = "fake-gemini-key"
VOICE_LIMIT = 20
#: hard time limits of the lab's tasks: above a partition plus a synthesis, so a partition is
#: never taken for a hung job; the visibility timeout must exceed them (Settings checks it)
TIME_LIMIT_S = 120
VISIBILITY_S = 130  # the Redis broker's (unused on RabbitMQ; Settings still checks it)
HEARTBEAT_S = 5
HOSTS = (("store", 2, False), ("api", 3, True), ("worker1", 11, False), ("worker2", 12, False))


@dataclass
class Cluster:
    lab: netlab.Lab
    env: dict[str, str]
    settings: Settings
    client: httpx.Client
    users: UserFactory
    workers: dict[str, Workers]  # by host
    fake: object  # FakeElevenLabsControl of the fake on the store host
    api_url: str
    logs: Path

    @property
    def db(self):
        return self.users.db

    def host_of(self, address: str | None) -> str | None:
        """Which lab host an address belongs to."""
        for host in self.lab.hosts.values():
            if address in (host.back_ip, host.front_ip):
                return host.name
        return None



def broker_node(store: netlab.Host, data_dir: Path, log_path: Path) -> devstack.RabbitMQ:
    """A private RabbitMQ node for the store host (the production broker, deploy/README.md): run
    inside the store's namespace, listening on the store's address, with its data directory,
    epmd and ports of its own. `.start()` starts it (several seconds: the fixture starts it
    while the other stores come up), `.url()` is its AMQP URL, `.stop()` stops it."""
    return devstack.RabbitMQ(data_dir, host=store.back_ip, wrap=store.launcher(), log_path=log_path,
                             nodename=f"nvhosts-{os.getpid()}@localhost")


def _spawn_fake(store: netlab.Host, module: str, port: int, logs: Path, *args: str) -> tuple:
    proc = devstack.spawn([*store.launcher(), sys.executable, "-m", module, "--host", store.back_ip,
                           "--port", str(port), *args], env=process_env({}), cwd=str(REPO),
                          log_path=logs / f"{module.rsplit('.', 1)[-1]}.log")
    return proc, f"http://{store.back_ip}:{port}"


def _worker_ready(workers: Workers, name: str, timeout_s: float = 90) -> None:
    proc = workers.procs[name]
    devstack.wait_until(lambda: " ready." in workers.log(name), timeout_s, f"worker {name}", proc)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    reason = netlab.available()
    if reason:
        pytest.skip(f"tests/hosts: {reason}")
    netlab.sweep_stale()
    from shared.bootstrap import ensure_indexes
    from shared.stores import mongo_db
    from tests.fakes.elevenlabs import FakeElevenLabsControl
    from tests.reliability.chaos import spawn_api

    logs = tmp_path_factory.mktemp("hosts")
    lab = netlab.Lab()
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        stack.callback(lab.destroy)  # last: after every process below was stopped
        lab.build(HOSTS)
        store, api = lab["store"], lab["api"]

        broker = broker_node(store, logs / "rabbitmq", logs / "rabbitmq.log")
        stack.callback(broker.stop)
        broker_up = stack.enter_context(ThreadPoolExecutor(1)).submit(broker.start)
        redis_proc, redis_url = devstack.start_redis(logs / "redis", appendonly=True, log_path=logs / "redis.log",
                                                     host=store.back_ip, launcher=store.launcher())
        stack.callback(devstack.stop_process, redis_proc)
        mongo_proc, mongo_url = devstack.start_mongo(logs / "mongo", log_path=logs / "mongo.log",
                                                     host=store.back_ip, launcher=store.launcher())
        stack.callback(devstack.stop_process, mongo_proc)
        eleven_proc, eleven_url = _spawn_fake(store, "tests.fakes.elevenlabs", 8765, logs, "--api-key", ELEVEN_KEY,
                                              "--voice-limit", str(VOICE_LIMIT))
        stack.callback(devstack.stop_process, eleven_proc)
        gemini_proc, gemini_url = _spawn_fake(store, "tests.fakes.gemini", 8089, logs, "--api-key", GEMINI_KEY)
        stack.callback(devstack.stop_process, gemini_proc)

        env = {**stack_env(redis_url, mongo_url),
               "BROKER_URL": broker.url(),
               "VOICE_PROVIDER": "elevenlabs", "ELEVEN_LABS_API_KEY": ELEVEN_KEY, "ELEVEN_LABS_BASE_URL": eleven_url,
               "POOL_CAPACITY": str(VOICE_LIMIT), "TEXT_PROVIDER": "gemini", "GEMINI_API_KEY": GEMINI_KEY,
               "GEMINI_BASE_URL": gemini_url, "GEMINI_TIMEOUT_S": "10",
               "CLONE_TIME_LIMIT_S": str(TIME_LIMIT_S), "PERFORM_TIME_LIMIT_S": str(TIME_LIMIT_S),
               "CLEANUP_TIME_LIMIT_S": str(TIME_LIMIT_S), "MAINTENANCE_TIME_LIMIT_S": str(TIME_LIMIT_S),
               "BROKER_VISIBILITY_TIMEOUT_S": str(VISIBILITY_S), "READINESS_TIMEOUT_S": "5",
               "MONGO_TIMEOUT_MS": "2000", "REDIS_TIMEOUT_S": "2",
               # RabbitMQ finds a cut host's connection dead by its missed heartbeats and gives
               # its messages to the other host: 7-15 s at 5 s (measured), inside the tests' 30 s
               # cut; at the default 10 s it took 28-29 s, which a 30 s cut may outlast
               # (docs/RELIABILITY.md, "Across hosts")
               "BROKER_HEARTBEAT_S": str(HEARTBEAT_S)}
        settings = make_settings(env)
        db = mongo_db(settings)
        ensure_indexes(db)
        devstack.wait_until(lambda: httpx.get(f"{eleven_url}/_fake/state", timeout=1).status_code == 200, 30,
                            "fake ElevenLabs", eleven_proc)
        devstack.wait_until(lambda: httpx.get(f"{gemini_url}/_fake/requests", timeout=1).status_code == 200, 30,
                            "fake Gemini", gemini_proc)
        fake = FakeElevenLabsControl(eleven_url)
        stack.callback(fake.close)

        workers: dict[str, Workers] = {}
        for host, queues in (("worker1", ("perform", "clone")), ("worker2", QUEUES)):
            pool = Workers(process_env(env), logs, launcher=lab[host].launcher())
            stack.callback(pool.stop_all)
            pool.start(host, queues, concurrency=2)
            workers[host] = pool

        api_proc, api_url = spawn_api(env, logs / "api.log", host=api.front_ip, launcher=api.launcher())
        stack.callback(devstack.stop_process, api_proc)
        # the workers and the API started while the broker was still booting (its URL is known
        # beforehand; a worker keeps trying to connect): the lab is up 10-20 s sooner
        broker_up.result()
        for host, pool in workers.items():
            _worker_ready(pool, host)
        client = stack.enter_context(api_client(api_url, timeout=60))
        print(f"\n[hosts] lab up in {time.monotonic() - started:.1f} s, logs in {logs}: "
              + ", ".join(f"{h.name} {h.back_ip}" for h in lab.hosts.values()), flush=True)
        yield Cluster(lab, env, settings, client, UserFactory(client, db), workers, fake, api_url, logs)
        from shared.stores import mongo_client, redis_client

        # the test process's own clients point at a store that is about to disappear
        mongo_client(settings).close()
        redis_client(settings).close()
    left = lab.leftovers()
    assert not left, f"namespaces left behind: {left}"
