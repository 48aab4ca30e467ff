"""What Celery needs to know about the broker: Redis (the embedded default of `make run`) or
RabbitMQ (production; docs/ARCHITECTURE.md, "Queues"; deploy/README.md).

`celery_settings(url, settings)` is every setting that differs between the two, applied by
`celeryconfig` for the process's own BROKER_URL and by `producer_for` for a broker given
explicitly, so a producer and the workers always declare a queue the same way.

On RabbitMQ:
- the job queues are quorum queues (durable, replicated, fsynced before the confirm), bound to
  topic exchanges so Celery's native delayed delivery carries countdown retries (a quorum queue
  has no global QoS, so a worker cannot hold ETA messages by raising its prefetch);
- every publish waits for the broker's confirm (`confirm_publish`): a job the API answered 202
  for is on disk at the broker;
- a worker's connection carries heartbeats (BROKER_HEARTBEAT_S): when a worker dies its
  connection closes and RabbitMQ returns its unacknowledged messages to the queue at once; a
  host that vanishes without closing it is found within about two heartbeats;
- readiness canaries go to a small classic queue per job queue (`<queue>.canary`, messages
  expire in a minute, the queue itself when nobody has used it for ten), never into the quorum
  queues' replicated log. Each worker consumes the canary queue of every queue it consumes, on
  the same channel, so an answer still proves that worker's consumer is alive.
"""

from __future__ import annotations

from typing import Any

from kombu import Exchange, Queue

from shared.config import QUEUES

AMQP_SCHEMES = ("amqp://", "amqps://", "pyamqp://")
CANARY_EXCHANGE = "nv.canary"
CANARY_MESSAGE_TTL_MS = 60_000
CANARY_QUEUE_EXPIRES_MS = 600_000


def is_amqp(url: str) -> bool:
    return url.startswith(AMQP_SCHEMES)


def canary_queue(queue: str, url: str) -> str:
    """The queue a readiness canary for `queue` is sent to on this broker."""
    return f"{queue}.canary" if is_amqp(url) else queue


def job_queues(url: str) -> tuple[Queue, ...]:
    if not is_amqp(url):
        return tuple(Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES)
    return tuple(Queue(name, Exchange(name, type="topic", durable=True), routing_key=name, durable=True,
                       queue_arguments={"x-queue-type": "quorum"}) for name in QUEUES)


def canary_queues(url: str) -> tuple[Queue, ...]:
    if not is_amqp(url):
        return ()
    exchange = Exchange(CANARY_EXCHANGE, type="topic", durable=True)
    return tuple(Queue(canary_queue(name, url), exchange, routing_key=canary_queue(name, url), durable=True,
                       queue_arguments={"x-queue-type": "classic", "x-message-ttl": CANARY_MESSAGE_TTL_MS,
                                        "x-expires": CANARY_QUEUE_EXPIRES_MS}) for name in QUEUES)


def celery_settings(url: str, settings) -> dict[str, Any]:
    """Celery settings that depend on the broker at `url`."""
    if not is_amqp(url):
        timeout = settings.visibility_timeout_s
        return {
            "task_queues": job_queues(url),
            # A message not acknowledged within the visibility timeout is delivered again, so it
            # must exceed the longest hard time limit, with margin (BROKER_VISIBILITY_TIMEOUT_S,
            # validated in Settings).
            "broker_transport_options": {
                "visibility_timeout": timeout,
                # kombu sweeps for messages past their visibility timeout every interval x
                # throttle seconds (10 x 10 by default): keep that a small fraction of the
                # timeout, so a message whose worker was killed is delivered again soon after
                # the timeout, not minutes later
                "unacked_restore_interval": max(1, min(10, timeout // 10)),
                "unacked_restore_throttle": 1,
                "socket_timeout": 10,
                "socket_connect_timeout": 5,
                "health_check_interval": 15,
                "retry_on_timeout": True,
            },
        }
    return {
        "task_queues": job_queues(url) + canary_queues(url),
        "broker_transport_options": {"confirm_publish": True},
        "broker_connection_timeout": 5,
        # worker connections only: producers (the API) open theirs without heartbeats
        "broker_heartbeat": settings.broker_heartbeat_s,
        "broker_heartbeat_checkrate": 2,
        # quorum queues: per-consumer prefetch (no global QoS), countdowns by native delayed
        # delivery through quorum queues as well
        "worker_detect_quorum_queues": True,
        "broker_native_delayed_delivery_queue_type": "quorum",
    }
