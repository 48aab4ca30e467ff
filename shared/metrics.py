"""Prometheus metrics: every metric name lives here, with the small helpers that record them.

Metrics are defined once, at import, in prometheus_client's default registry; the API's
`/metrics` route and the worker exporter only *expose* them. Building the API app many times in
one process (the tests do) therefore never registers a metric twice.

Two ways of running (docs/METRICS.md):

* API (one process): values live in memory; `/metrics` serves the default registry plus
  `queue_depth` (and `queue_consumers` on RabbitMQ) and `broker_up`, read from the broker at
  scrape time.
* Workers (Celery prefork): tasks run in forked children, so values are written to mmap'd files
  under `PROMETHEUS_MULTIPROC_DIR` (prometheus_client's multiprocess mode, chosen when that
  variable is set *before* prometheus_client is imported, i.e. by whoever launches the worker).
  The worker's parent process wipes the directory at start and serves the sum over all children
  on `WORKER_METRICS_PORT`.

Every recording helper swallows its own errors: a metric must never fail a request or a job.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable

import redis
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from shared.clock import now
from shared.config import QUEUES
from shared.errors import AppError

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: the classic text format every Prometheus (and Flower's scraper config) understands
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# ----------------------------------------------------------------------------- definitions

if os.environ.get(MULTIPROC_ENV):
    # prometheus_client writes a file there as each metric below is defined: it must exist now
    os.makedirs(os.environ[MULTIPROC_ENV], exist_ok=True)

#: route label for requests no route matched (404s, probes): keeps raw paths out of labels
UNMATCHED_ROUTE = "<unmatched>"
_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

HTTP_REQUESTS = Counter(
    "nv_http_requests_total", "API requests answered, by route template and status code.",
    ["method", "route", "status"])
HTTP_DURATION = Histogram(
    "nv_http_request_duration_seconds",
    "API request latency, until the last body byte was sent (a stream's whole length for SSE).",
    ["method", "route"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))

JOBS = Counter(
    "nv_jobs_total", "Job runs finished, by kind and outcome (succeeded | failed:<ERROR_CODE>).",
    ["kind", "outcome"])
JOB_DURATION = Histogram(
    "nv_job_duration_seconds", "Job run time in the worker (from pickup to the final state).",
    ["kind", "outcome"], buckets=(0.5, 1, 2, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600))
JOB_STAGE_DURATION = Histogram(
    "nv_job_stage_duration_seconds", "Time spent in each stage of a job run.",
    ["kind", "stage"], buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300))
JOB_QUEUE_WAIT = Histogram(
    "nv_job_queue_wait_seconds", "Time from a job's acceptance to its first pickup by a worker.",
    ["kind"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800))
# livesum: the children currently alive add up; a dead child's share is dropped (mark_process_dead)
JOBS_IN_PROGRESS = Gauge(
    "nv_jobs_in_progress", "Job runs executing right now.", ["kind"], multiprocess_mode="livesum")

POOL_CREATE = Counter("pool_create_total", "Voices created at the provider to warm a user's voice.")
POOL_REUSE = Counter("pool_reuse_total", "Voice acquisitions served by a voice that was already warm.")
POOL_EVICTIONS = Counter("pool_evictions_total", "Voices evicted from the provider to free a slot.")
# The size is a global count (read from MongoDB) reported by whichever process changed it last, so
# the most recent report is the truth; summing or taking the max over processes would not be.
POOL_SIZE = Gauge("pool_current_size", "Voice slots in use at the provider.", multiprocess_mode="mostrecent")

CHARS = Counter(
    "chars_generated_total",
    "Characters of delivered voice notes: raw = text length, effective = what the quota charged.",
    ["kind"])

PROVIDER_CALLS = Counter(
    "provider_calls_total", "Calls to external providers, by outcome (ok or the provider's error code).",
    ["provider", "operation", "outcome"])
PROVIDER_DURATION = Histogram(
    "provider_call_duration_seconds", "Latency of calls to external providers.",
    ["provider", "operation"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120))

CLONE_REJECTIONS = Counter(
    "clone_rejections_total", "Voice samples refused, by error code (SAMPLE_TOO_SHORT, ...).", ["reason"])

VOICE_MATCH = Histogram(
    "voice_match_score", "Voice match score (0-100) of each new clone against its owner's sample.",
    buckets=(10, 20, 35, 50, 65, 80, 90, 100))

# exposed by the API at scrape time (QueueDepthCollector, AmqpQueueDepthCollector)
QUEUE_DEPTH = "queue_depth"
QUEUE_CONSUMERS = "queue_consumers"  # RabbitMQ only
BROKER_UP = "broker_up"


def _never_raise(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception:  # metrics must never fail the work they measure
            log.exception("recording metric failed", extra={"helper": fn.__name__})
            return None

    return wrapper


_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")


def _label(value: object, fallback: str = "unknown", limit: int = 48) -> str:
    """A label value from text an outside party chose (a provider's error code)."""
    text = _UNSAFE.sub("_", str(value or ""))[:limit]
    return text or fallback


# ----------------------------------------------------------------------------- HTTP


@_never_raise
def observe_http(method: str, route: str, status: int, duration_s: float) -> None:
    method = method if method in _HTTP_METHODS else "OTHER"
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_DURATION.labels(method, route).observe(duration_s)


# ----------------------------------------------------------------------------- jobs

_known_codes: set[str] = set()


def _error_catalogue() -> set[str]:
    codes, todo = set(), [AppError]
    while todo:
        cls = todo.pop()
        codes.add(cls.code)
        todo.extend(cls.__subclasses__())
    return codes


def job_outcome(error_code: str | None) -> str:
    """`succeeded`, or `failed:<CODE>` for a code of the AppError catalogue (else `failed:OTHER`),
    so the label stays a fixed, small set whatever a failure carries."""
    if error_code is None:
        return "succeeded"
    if error_code not in _known_codes:
        _known_codes.update(_error_catalogue())  # classes defined since the last look
    return f"failed:{error_code if error_code in _known_codes else 'OTHER'}"


class JobTimer:
    """Times one run of a job: each stage as the progress callback moves on, then the whole run.

    `start()` when the job is really running (not for a redelivered, finished one), `stage()` on
    every progress report, `finish(code)` with the outcome; `close()` (in a finally) covers a run
    that ends without an outcome, e.g. retried because a store is down."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._running = False
        self._started = self._stage_started = 0.0
        self._stage = ""

    @_never_raise
    def start(self, stage: str = "starting", job: dict | None = None) -> None:
        """`job`, the record the run started from: its first run records how long it waited
        since it was accepted (`created_at`, set by the API) in nv_job_queue_wait_seconds. A
        redelivered run is left out: its wait would include the previous run."""
        self._started = self._stage_started = time.monotonic()
        self._stage = stage
        self._running = True
        JOBS_IN_PROGRESS.labels(self.kind).inc()
        created = (job or {}).get("created_at")
        if created is not None and (job or {}).get("attempts") == 1:
            JOB_QUEUE_WAIT.labels(self.kind).observe(max(0.0, (now() - created).total_seconds()))

    @_never_raise
    def stage(self, stage: str) -> None:
        if not self._running or stage == self._stage:
            return  # a finer progress report within the same stage
        self._end_stage()
        self._stage, self._stage_started = stage, time.monotonic()

    @_never_raise
    def finish(self, error_code: str | None = None) -> None:
        if not self._running:
            return
        outcome = job_outcome(error_code)
        JOBS.labels(self.kind, outcome).inc()
        JOB_DURATION.labels(self.kind, outcome).observe(time.monotonic() - self._started)
        self._end_stage()
        self.close()

    @_never_raise
    def close(self) -> None:
        if self._running:
            self._running = False
            JOBS_IN_PROGRESS.labels(self.kind).dec()

    def _end_stage(self) -> None:
        JOB_STAGE_DURATION.labels(self.kind, self._stage).observe(time.monotonic() - self._stage_started)


# ----------------------------------------------------------------------------- domain events


@_never_raise
def pool_created() -> None:
    POOL_CREATE.inc()


@_never_raise
def pool_reused() -> None:
    POOL_REUSE.inc()


@_never_raise
def pool_evicted() -> None:
    POOL_EVICTIONS.inc()


@_never_raise
def set_pool_size(n: int) -> None:
    POOL_SIZE.set(n)


@_never_raise
def chars_generated(raw: int, effective: int) -> None:
    CHARS.labels("raw").inc(raw)
    CHARS.labels("effective").inc(effective)


@_never_raise
def clone_rejected(reason: str) -> None:
    CLONE_REJECTIONS.labels(_label(reason)).inc()


@_never_raise
def voice_match_scored(score: int) -> None:
    VOICE_MATCH.observe(score)


@_never_raise
def provider_call(provider: str, operation: str, outcome: str, duration_s: float) -> None:
    PROVIDER_CALLS.labels(provider, operation, _label(outcome)).inc()
    PROVIDER_DURATION.labels(provider, operation).observe(duration_s)


def provider_call_hook(provider: str) -> Callable[[str, str, float], None]:
    """An adapter's `on_call(operation, outcome, duration_s)` hook recording to the metrics above."""
    return functools.partial(provider_call, provider)


# ----------------------------------------------------------------------------- exposition


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def _broker_up(up: bool) -> GaugeMetricFamily:
    family = GaugeMetricFamily(BROKER_UP, "1 when the last reading of the broker's queues succeeded, else 0.")
    family.add_metric([], 1.0 if up else 0.0)
    return family


class QueueDepthCollector:
    """`queue_depth{queue}` on a Redis broker: messages waiting in each Celery queue, read at
    scrape time, and `broker_up`.

    Celery's Redis transport keeps a queue as a Redis list named after it, plus one list per
    priority step (`<queue>\\x06\\x16<n>`) for messages sent with a priority; they are summed.
    With Redis down the samples are left out (the scrape itself still succeeds)."""

    PRIORITY_SEPARATOR = "\x06\x16"
    PRIORITY_STEPS = (3, 6, 9)  # kombu's PRIORITY_STEPS, 0 being the plain list

    def __init__(self, redis_url: str, queues: Iterable[str] = QUEUES, timeout_s: float = 1.0) -> None:
        self.queues = tuple(queues)
        self._redis = redis.Redis.from_url(redis_url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)

    def _lists(self, queue: str) -> list[str]:
        return [queue] + [f"{queue}{self.PRIORITY_SEPARATOR}{p}" for p in self.PRIORITY_STEPS]

    def collect(self):
        family = GaugeMetricFamily(QUEUE_DEPTH, "Messages waiting in each Celery queue (Redis LLEN).",
                                   labels=["queue"])
        try:
            pipe = self._redis.pipeline(transaction=False)
            for queue in self.queues:
                for name in self._lists(queue):
                    pipe.llen(name)
            counts = pipe.execute()
        except redis.RedisError as exc:
            log.warning("queue depth unavailable", extra={"error_type": type(exc).__name__})
            counts = None
        else:
            per_queue = len(self.PRIORITY_STEPS) + 1
            for i, queue in enumerate(self.queues):
                family.add_metric([queue], sum(counts[i * per_queue:(i + 1) * per_queue]))
        yield family
        yield _broker_up(counts is not None)


class AmqpQueueDepthCollector:
    """`queue_depth{queue}` and `queue_consumers{queue}` on a RabbitMQ broker, and `broker_up`.

    Each job queue is read with a passive `queue.declare` (it creates nothing; the answer
    carries the queue's ready-message count and its consumer count) on one channel of one
    connection the collector keeps between scrapes (replaced at once when it has died since the
    last one). Messages delivered to a worker but not yet acknowledged are not counted (they
    are running, or prefetched by a worker). A queue that does not exist yet has no messages
    and no consumers: 0 and 0.

    A scrape never waits long for the broker: connect, read and write time out after
    `timeout_s`; a scrape arriving during another's reading waits at most `timeout_s` for it,
    then answers with the last reading; a reading (or a failure) is reused for `cache_s`, so a
    broker that is down costs at most one timeout per `cache_s`. Without a reading the depth
    and consumer samples are left out and `broker_up` is 0."""

    NOT_FOUND = 404

    def __init__(self, broker_url: str, queues: Iterable[str] = QUEUES, timeout_s: float = 1.0,
                 cache_s: float = 5.0) -> None:
        self.broker_url = broker_url
        self.queues = tuple(queues)
        self.timeout_s = timeout_s
        self.cache_s = cache_s
        self._lock = threading.Lock()
        self._conn = None
        self._reading: dict[str, tuple[int, int]] | None = None
        self._read_at = float("-inf")

    def _connect(self):
        from kombu import Connection

        conn = Connection(self.broker_url, connect_timeout=self.timeout_s, heartbeat=0,
                          transport_options={"read_timeout": self.timeout_s, "write_timeout": self.timeout_s})
        conn.connect()
        return conn

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a dead connection may fail to close; it is dropped
                conn.release()

    def read(self) -> dict[str, tuple[int, int]]:
        """{queue: (messages ready, consumers)}, straight from the broker."""
        from amqp.exceptions import ChannelError

        if self._conn is None:
            self._conn = self._connect()
        channel = self._conn.channel()
        found = {}
        try:
            for queue in self.queues:
                try:
                    _, messages, consumers = channel.queue_declare(queue=queue, passive=True)
                except ChannelError as exc:
                    if getattr(exc, "code", None) != self.NOT_FOUND:
                        raise
                    channel = self._conn.channel()  # the broker closed the channel that asked
                    messages, consumers = 0, 0
                found[queue] = (messages, consumers)
        finally:
            with contextlib.suppress(Exception):
                channel.close()
        return found

    def _read_or_none(self) -> dict[str, tuple[int, int]] | None:
        # a kept connection may have died since the last scrape (a broker restart): one more
        # try on a new connection before saying the broker is down
        for attempt in range(2):
            reused = self._conn is not None
            try:
                return self.read()
            except Exception as exc:  # noqa: BLE001 - socket, AMQP and timeout errors alike
                self._close()
                if reused and attempt == 0:
                    continue
                log.warning("queue depth unavailable", extra={"error_type": type(exc).__name__})
                return None
        return None

    def reading(self) -> dict[str, tuple[int, int]] | None:
        if not self._lock.acquire(timeout=self.timeout_s):
            return self._reading  # another scrape is reading: the last reading, if any
        try:
            if time.monotonic() - self._read_at >= self.cache_s:
                self._reading = self._read_or_none()
                self._read_at = time.monotonic()
            return self._reading
        finally:
            self._lock.release()

    def collect(self):
        found = self.reading()
        depth = GaugeMetricFamily(QUEUE_DEPTH, "Messages ready in each Celery queue (RabbitMQ, passive declare).",
                                  labels=["queue"])
        consumers = GaugeMetricFamily(QUEUE_CONSUMERS, "Consumers of each Celery queue (RabbitMQ).",
                                      labels=["queue"])
        for queue, (messages, count) in (found or {}).items():
            depth.add_metric([queue], messages)
            consumers.add_metric([queue], count)
        yield depth
        yield consumers
        yield _broker_up(found is not None)


class _DefaultRegistry:
    """Forwards to the process-wide registry, so a per-app registry can add its own collectors
    without registering (or re-registering) anything globally."""

    def collect(self):
        return REGISTRY.collect()


def api_registry(broker_url: str = "", timeout_s: float = 1.0) -> CollectorRegistry:
    """What the API's /metrics serves: this process's metrics (or, when the API itself runs as
    several processes with PROMETHEUS_MULTIPROC_DIR set, all of theirs) and the queue depths.

    The queue depths come from the broker, Redis or RabbitMQ (docs/METRICS.md)."""
    registry = CollectorRegistry()
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_DefaultRegistry())
    if broker_url.startswith(("redis://", "rediss://", "unix://")):
        registry.register(QueueDepthCollector(broker_url, timeout_s=timeout_s))
    elif broker_url.startswith(("amqp://", "amqps://", "pyamqp://")):
        registry.register(AmqpQueueDepthCollector(broker_url, timeout_s=timeout_s))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


# ----------------------------------------------------------------------------- worker side


def wipe_multiprocess_dir() -> None:
    """Start a worker node from zero: delete the value files of its previous run (call in the
    parent, before it forks). Only `*.db` files go, in case the directory holds anything else;
    this process's own files stay (it has recorded nothing yet, and a solo pool records here)."""
    path = multiprocess_dir()
    if not path:
        return
    os.makedirs(path, exist_ok=True)
    own = f"_{os.getpid()}.db"
    for file in glob.glob(os.path.join(path, "*.db")):
        if not file.endswith(own):
            os.remove(file)


@_never_raise
def mark_process_dead(pid: int) -> None:
    """Drop a dead child's live gauges (nv_jobs_in_progress); its counters rightly stay."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)


def start_worker_exporter(port: int, host: str = "127.0.0.1"):
    """Serve every child's metrics of this worker node on http://host:port/metrics; returns the
    server (call `shutdown()` on it). Without a multiprocess directory only this process's own
    metrics could be served, which under prefork would be empty: that is logged loudly."""
    from prometheus_client import start_http_server

    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        log.error("WORKER_METRICS_PORT is set but %s is not: prefork children's metrics cannot be "
                  "collected; serving this process's registry only", MULTIPROC_ENV)
        registry = REGISTRY
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server
