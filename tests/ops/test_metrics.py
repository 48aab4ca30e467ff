"""Prometheus metrics, scraped the way Prometheus would: over HTTP from the API's /metrics and
from the session worker's exporter, before and after real requests and jobs."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from shared.config import QUEUES
from tests import samples
from tests.conftest import make_settings, wait_job
from tests.fakes.server import free_port, serve
from tests.perform.helpers import perform_ok, user_with_voice

Samples = dict[tuple[str, frozenset], float]


def scrape(base_url: str, headers: dict | None = None) -> Samples:
    resp = httpx.get(f"{base_url}/metrics", headers=headers, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(resp.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape_until(base_url: str, name: str, labels: dict[str, str], at_least: float,
                 timeout_s: float = 15) -> Samples:
    """The worker records a job's outcome just after its final state is visible to clients:
    scrape until the series reaches `at_least` (or give up and let the assertion show it)."""
    deadline = time.monotonic() + timeout_s
    while True:
        samples = scrape(base_url)
        if value(samples, name, **labels) >= at_least or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


@pytest.fixture()
def worker_metrics(workers) -> str:
    assert workers.metrics_port, "the session worker runs without a metrics exporter"
    return f"http://127.0.0.1:{workers.metrics_port}"


# ----------------------------------------------------------------------------- API


def test_requests_are_counted_by_route_template_and_status(client, api_url, new_user):
    _, headers = new_user()
    route = {"method": "GET", "route": "/jobs/{job_id}"}
    missing = [uuid.uuid4().hex for _ in range(2)]
    before = scrape(api_url)
    for job_id in missing:
        assert client.get(f"/jobs/{job_id}", headers=headers).status_code == 404
    assert client.get("/health").status_code == 200
    after = scrape(api_url)

    assert value(after, "nv_http_requests_total", **route, status="404") - \
        value(before, "nv_http_requests_total", **route, status="404") == 2
    assert value(after, "nv_http_request_duration_seconds_count", **route) - \
        value(before, "nv_http_request_duration_seconds_count", **route) == 2
    assert value(after, "nv_http_requests_total", method="GET", route="/health", status="200") - \
        value(before, "nv_http_requests_total", method="GET", route="/health", status="200") == 1
    # labels carry templates only: neither the ids asked for nor the scrapes themselves appear
    routes = {dict(labels).get("route") for (name, labels) in after if name == "nv_http_requests_total"}
    assert not any(job_id in r for r in routes for job_id in missing), routes
    assert "/metrics" not in routes


def test_queue_depth_is_exposed_for_every_queue(api_url):
    depths = {dict(labels)["queue"]: v for (name, labels), v in scrape(api_url).items() if name == "queue_depth"}
    assert set(depths) == set(QUEUES)
    assert all(v >= 0 for v in depths.values())


def test_queue_depth_counts_the_messages_waiting_in_redis(rds, redis_url):
    from shared.metrics import QueueDepthCollector

    queue = f"nvtest-depth-{uuid.uuid4().hex[:8]}"  # a queue no worker consumes
    rds.rpush(queue, "a", "b", "c")
    rds.rpush(f"{queue}\x06\x163", "high priority")  # Celery's list for priority step 3
    try:
        family, up = QueueDepthCollector(redis_url, queues=[queue]).collect()
        assert [(s.labels, s.value) for s in family.samples] == [({"queue": queue}, 4)]
        assert [s.value for s in up.samples] == [1]
    finally:
        rds.delete(queue, f"{queue}\x06\x163")


def test_scrape_still_answers_with_redis_down(base_env):
    from api.main import create_app

    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    with serve(create_app(make_settings(base_env, redis_url=dead_redis, redis_timeout_s=0.5))) as url:
        samples = scrape(url)
    assert not any(name == "queue_depth" for name, _ in samples)  # skipped, not invented
    assert value(samples, "broker_up") == 0
    assert ("pool_current_size", frozenset()) in samples  # the rest of the scrape is there


#: a Redis database no worker of the session consumes from, for a broker with no consumer
IDLE_REDIS_DB = 7


@pytest.fixture(params=["redis", "rabbitmq"])
def idle_broker(request, redis_url) -> Iterator[str]:
    """A broker URL of each kind that no worker consumes: messages sent there stay queued."""
    if request.param == "redis":
        url = redis_url.rsplit("/", 1)[0] + f"/{IDLE_REDIS_DB}"
        yield url
        redis.Redis.from_url(url).flushdb()
    else:
        yield request.getfixturevalue("rabbitmq").new_vhost_url()


def depths(samples: Samples, name: str = "queue_depth") -> dict[str, float]:
    return {dict(labels)["queue"]: v for (n, labels), v in samples.items() if n == name}


def test_queue_depth_counts_the_jobs_waiting_on_either_broker(base_env, db, idle_broker):
    """N clone jobs accepted by the API and not consumed by anyone: /metrics shows N."""
    from api.main import create_app
    from tests.conftest import UserFactory

    waiting = 3
    with serve(create_app(make_settings(base_env, broker_url=idle_broker))) as url, \
            httpx.Client(base_url=url, timeout=30) as api:
        before = scrape(url)
        users = UserFactory(api, db)
        for _ in range(waiting):
            _, headers = users()
            resp = api.post("/user/voice", headers=headers,
                            files={"file": ("sample.mp3", samples.original(), "audio/mpeg")})
            assert resp.status_code == 202, resp.text
        # a RabbitMQ reading is reused for a few seconds (AmqpQueueDepthCollector.cache_s)
        deadline = time.monotonic() + 15
        while True:
            after = scrape(url)
            if depths(after).get("clone") == waiting or time.monotonic() > deadline:
                break
            time.sleep(0.5)

    assert value(before, "broker_up") == 1 and value(after, "broker_up") == 1
    assert set(depths(after)) == set(QUEUES)
    assert depths(after)["clone"] - depths(before).get("clone", 0) == waiting
    assert all(depths(after)[q] == 0 for q in QUEUES if q != "clone")
    if idle_broker.startswith("amqp"):
        assert depths(after, "queue_consumers") == {q: 0 for q in QUEUES}  # nobody consumes here
    else:
        assert not depths(after, "queue_consumers")  # Redis has no notion of consumers


def test_queue_consumers_on_rabbitmq_count_the_workers(rabbit_api_url, rabbit_workers):
    samples = scrape(rabbit_api_url)
    assert value(samples, "broker_up") == 1
    assert set(depths(samples, "queue_consumers")) == set(QUEUES)
    assert all(count >= 1 for count in depths(samples, "queue_consumers").values())


def test_a_rabbitmq_connection_lost_between_scrapes_is_replaced(rabbit_env):
    """The collector keeps its connection between scrapes; when that connection has died (a
    broker restart), the next reading connects again instead of reporting the broker down."""
    import socket

    from shared.metrics import AmqpQueueDepthCollector

    collector = AmqpQueueDepthCollector(rabbit_env["BROKER_URL"], timeout_s=2, cache_s=0)
    assert set(collector.reading() or {}) == set(QUEUES)
    collector._conn.connection.transport.sock.shutdown(socket.SHUT_RDWR)  # the link dies under it
    assert set(collector.reading() or {}) == set(QUEUES)
    assert [s.value for f in collector.collect() if f.name == "broker_up" for s in f.samples] == [1]


def test_scrape_answers_quickly_with_rabbitmq_down(base_env):
    """A broker that is not there: no depth or consumer samples, broker_up 0, within the
    timeout; the failure is remembered for a few seconds, so scrapes meanwhile do not wait."""
    from api.main import create_app
    from shared.metrics import AmqpQueueDepthCollector

    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}//"
    with serve(create_app(make_settings(base_env, broker_url=dead, redis_timeout_s=0.5))) as url:
        started = time.monotonic()
        samples = scrape(url)
        took = time.monotonic() - started
    assert took < 5, took
    assert value(samples, "broker_up") == 0
    assert not depths(samples) and not depths(samples, "queue_consumers")
    assert ("pool_current_size", frozenset()) in samples

    collector = AmqpQueueDepthCollector(dead, timeout_s=0.5, cache_s=30)
    list(collector.collect())
    started = time.monotonic()
    families = {f.name: f for f in collector.collect()}
    assert time.monotonic() - started < 0.1  # the cached failure, not a second attempt
    assert [s.value for s in families["broker_up"].samples] == [0]


def test_metrics_token_is_required_when_set(base_env):
    from api.main import create_app

    token = "scrape-" + uuid.uuid4().hex
    with serve(create_app(make_settings(base_env, metrics_token=token))) as url:
        anonymous = httpx.get(f"{url}/metrics", timeout=10)
        wrong = httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer nope"}, timeout=10)
        samples = scrape(url, headers={"Authorization": f"Bearer {token}"})

    assert anonymous.status_code == 401
    assert set(anonymous.json()) == {"error", "message", "action"}
    assert anonymous.json()["error"] == "AUTH_REQUIRED"
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert wrong.status_code == 401 and wrong.json()["error"] == "TOKEN_INVALID"
    assert any(name == "nv_http_requests_total" for name, _ in samples)


# ----------------------------------------------------------------------------- workers


def test_a_perform_moves_jobs_chars_stages_and_pool_reuse(client, new_user, workers, worker_metrics):
    _, headers = user_with_voice(client, new_user)
    ok = {"kind": "perform", "outcome": "succeeded"}
    before = scrape(worker_metrics)
    job = perform_ok(client, headers)
    after = scrape_until(worker_metrics, "nv_jobs_total", ok, value(before, "nv_jobs_total", **ok) + 1)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    chars = job["result"]["chars"]
    assert moved("chars_generated_total", kind="effective") == chars["effective"]
    assert moved("chars_generated_total", kind="raw") == chars["raw"]
    assert moved("nv_jobs_total", **ok) == 1
    assert moved("nv_job_duration_seconds_count", **ok) == 1
    assert moved("nv_job_queue_wait_seconds_count", kind="perform") == 1
    for stage in ("starting", "reserving", "composing", "acquiring_voice", "synthesizing", "mixing", "storing"):
        assert moved("nv_job_stage_duration_seconds_count", kind="perform", stage=stage) >= 1, stage
    # the voice cloned just before is still warm: the perform reuses it
    assert moved("pool_reuse_total") == 1
    assert value(after, "nv_jobs_in_progress", kind="perform") == 0


def test_a_rejected_sample_is_counted_by_its_code(client, new_user, workers, worker_metrics):
    _, headers = new_user()
    reason = {"reason": "SAMPLE_TOO_SHORT"}
    failed = {"kind": "clone", "outcome": "failed:SAMPLE_TOO_SHORT"}
    before = scrape(worker_metrics)
    resp = client.post("/user/voice", headers=headers, files={"file": ("short.mp3", samples.cut(10), "audio/mpeg")})
    assert resp.status_code == 202, resp.text
    job = wait_job(client, resp.json()["job_id"], headers, timeout_s=120)
    assert job["state"] == "failed" and job["error"]["error"] == "SAMPLE_TOO_SHORT"
    after = scrape_until(worker_metrics, "nv_jobs_total", failed, value(before, "nv_jobs_total", **failed) + 1)

    assert value(after, "clone_rejections_total", **reason) - value(before, "clone_rejections_total", **reason) == 1
    assert value(after, "nv_jobs_total", **failed) - value(before, "nv_jobs_total", **failed) == 1


def test_queue_wait_is_observed_on_a_job_s_first_run_only():
    from datetime import timedelta

    from shared.clock import now
    from shared.metrics import JobTimer

    def wait(field: str) -> float:
        return REGISTRY.get_sample_value(f"nv_job_queue_wait_seconds_{field}", {"kind": "diagnostic"}) or 0.0

    count, total = wait("count"), wait("sum")
    first = JobTimer("diagnostic")
    first.start(job={"created_at": now() - timedelta(seconds=42), "attempts": 1})
    first.finish()
    again = JobTimer("diagnostic")  # a redelivery: its wait would include the first run
    again.start(job={"created_at": now() - timedelta(seconds=600), "attempts": 2})
    again.finish()
    assert wait("count") - count == 1
    assert 42 <= wait("sum") - total < 45


# ----------------------------------------------------------------------------- providers


def _calls(provider: str, operation: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("provider_calls_total", {
        "provider": provider, "operation": operation, "outcome": outcome}) or 0.0


def test_elevenlabs_calls_are_counted_by_outcome_code(base_env, db):
    from shared.providers.factory import voice_provider
    from tests.fakes.elevenlabs import FakeElevenLabs
    from tests.fakes.elevenlabs import create_app as fake_app

    with serve(fake_app(FakeElevenLabs(api_key="right-key"))) as good, \
            serve(fake_app(FakeElevenLabs(api_key="another-key"))) as other:
        before_ok = _calls("elevenlabs", "subscription", "ok")
        before_bad = _calls("elevenlabs", "subscription", "invalid_api_key")
        for url in (good, other):
            provider = voice_provider(make_settings(base_env, voice_provider="elevenlabs",
                                                    eleven_labs_api_key="right-key", eleven_labs_base_url=url), db)
            try:
                provider.subscription()
            except Exception as exc:  # noqa: BLE001 - the second fake refuses the key
                assert url == other, exc
    assert _calls("elevenlabs", "subscription", "ok") - before_ok == 1
    assert _calls("elevenlabs", "subscription", "invalid_api_key") - before_bad == 1
    duration = REGISTRY.get_sample_value("provider_call_duration_seconds_count",
                                         {"provider": "elevenlabs", "operation": "subscription"})
    assert duration is not None and duration >= 2


def test_gemini_calls_are_counted(base_env):
    from shared.perform.prompt import build_voice_note_prompt
    from shared.perform.routines import get_routine
    from shared.perform.text.factory import text_generator
    from tests.fakes.gemini import running_fake_gemini

    with running_fake_gemini("gemini-key") as (_, url):
        generator = text_generator(make_settings(base_env, text_provider="gemini", gemini_api_key="gemini-key",
                                                 gemini_base_url=url))
        before = _calls("gemini", "generate", "ok")
        note = generator.generate(build_voice_note_prompt(get_routine("morning_motivation"), "my exam", "english"))
    assert note.text and generator.name == "gemini"
    assert _calls("gemini", "generate", "ok") - before == 1
