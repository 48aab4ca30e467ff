"""Readiness canaries: prove each queue is being consumed, not just that a worker process exists.

A Celery worker can stay alive and silently stop consuming after a broker drop, so readiness
sends a tiny task to every queue and waits for each queue's answer on a Redis list. On RabbitMQ
a canary goes to the queue's small companion queue, not into the quorum queue itself
(shared/jobs/broker.py)."""

from __future__ import annotations

import json
import time
import uuid

import redis

from shared.config import QUEUES
from shared.jobs.tasks import Task

CANARY_TASK = str(Task.CANARY)
REPLY_PREFIX = "nv:canary:"


def reply_key(nonce: str) -> str:
    return REPLY_PREFIX + nonce


def answer(r: redis.Redis, nonce: str, queue: str, worker: str) -> None:
    """Called by the canary task inside a worker."""
    key = reply_key(nonce)
    pipe = r.pipeline()
    pipe.rpush(key, json.dumps({"queue": queue, "worker": worker, "at": time.time()}))
    pipe.expire(key, 60)
    pipe.execute()


def probe_queues(r: redis.Redis, timeout_s: float, queues=QUEUES, broker_url: str = "") -> dict[str, dict]:
    """Send one canary per queue; report which answered within the timeout (and how fast)."""
    from shared.jobs.broker import canary_queue
    from shared.jobs.celery_app import producer_for

    app = producer_for(broker_url)
    url = broker_url or app.conf.broker_url
    nonce = uuid.uuid4().hex
    started = time.monotonic()
    try:
        for queue in queues:
            # expires: a canary nobody consumed in time is dropped, never run late or piled up
            app.send_task(CANARY_TASK, args=[nonce, queue], queue=canary_queue(queue, url), expires=timeout_s + 1,
                          ignore_result=True, retry=True, retry_policy={"max_retries": 1, "interval_start": 0.2})
    except Exception as exc:  # noqa: BLE001 - kombu's connection errors: the broker is down
        return {q: {"ok": False, "error": f"the broker is unreachable ({type(exc).__name__})"} for q in queues}
    results = {q: {"ok": False, "error": "no worker answered in time"} for q in queues}
    pending = set(queues)
    key = reply_key(nonce)
    while pending:
        remaining = timeout_s - (time.monotonic() - started)
        if remaining <= 0:
            break
        # short blocking pops: the client's socket timeout must stay above the block time
        item = r.blpop([key], timeout=max(0.05, min(1.0, remaining)))
        if item is None:
            continue
        reply = json.loads(item[1])
        queue = reply.get("queue")
        if queue in pending:
            pending.discard(queue)
            results[queue] = {"ok": True, "worker": reply.get("worker"),
                              "ms": round((time.monotonic() - started) * 1000, 1)}
    r.delete(key)
    return results
