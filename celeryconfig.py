"""Celery configuration: queues, routes, at-least-once delivery, limits and the beat schedule.

Loaded by the one Celery app (`shared.jobs.celery_app`) in the API (as a producer), the
workers, beat and Flower. Values derive from `shared.config.Settings`, so every setting
comes from the environment.
"""

from __future__ import annotations

from datetime import timedelta

from shared.config import get_settings
from shared.jobs import broker
from shared.jobs.tasks import Task

_settings = get_settings()

broker_url = _settings.celery_broker_url
result_backend = _settings.redis_url

# --- serialization: JSON only (no pickle: a broker message must never run code) ---
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
result_accept_content = ["json"]
timezone = "UTC"
enable_utc = True

# --- queues and routes: each queue has its own workers so one cannot starve another ---
# The queue declarations and the broker's transport options depend on the broker (Redis or
# RabbitMQ: quorum queues, publisher confirms, heartbeats): shared/jobs/broker.py.
globals().update(broker.celery_settings(broker_url, _settings))
task_default_queue = "perform"
task_create_missing_queues = False
task_routes = {
    "clone.*": {"queue": "clone", "routing_key": "clone"},
    "perform.*": {"queue": "perform", "routing_key": "perform"},
    "cleanup.*": {"queue": "cleanup", "routing_key": "cleanup"},
    "maintenance.*": {"queue": "maintenance", "routing_key": "maintenance"},
}

# --- at-least-once delivery; every task is idempotent by job id ---
task_acks_late = True
task_reject_on_worker_lost = True
task_acks_on_failure = True
task_acks_on_timeout = True
worker_prefetch_multiplier = 1
task_track_started = True
# The result backend is Redis whatever the broker; its visibility timeout is the broker's.
_visibility_timeout = _settings.visibility_timeout_s
result_backend_transport_options = {"visibility_timeout": _visibility_timeout}
redis_socket_timeout = 10
redis_socket_connect_timeout = 5
redis_backend_health_check_interval = 15
broker_connection_retry_on_startup = True
broker_connection_max_retries = None  # keep reconnecting after a broker restart
broker_channel_error_retry = True
worker_cancel_long_running_tasks_on_connection_loss = False
result_expires = timedelta(seconds=_settings.result_expires_s)
result_extended = True

# --- per-queue time limits (soft = hard - margin, so a task can fail its job cleanly) ---
_limits = {
    "clone": _settings.clone_time_limit_s,
    "perform": _settings.perform_time_limit_s,
    "cleanup": _settings.cleanup_time_limit_s,
    "maintenance": _settings.maintenance_time_limit_s,
}


class _TimeLimitsByQueue:
    """Task annotation giving each task its queue's limits (task names start with the queue)."""

    def annotate(self, task):
        hard = _limits.get(task.name.split(".", 1)[0])
        if hard is None:
            return None
        return {"time_limit": hard, "soft_time_limit": max(hard - 15, int(hard * 0.8))}

    def annotate_any(self):
        return None


task_annotations = (_TimeLimitsByQueue(),)

# --- observability: events for Flower ---
worker_send_task_events = True
# No "task-sent" event from the API: it doubled what an enqueue costs the API (a second publish;
# bench/send_cost.py, figures in bench/README.md). Flower still shows every task from the moment
# a worker receives it, and the queue depth before that.
task_send_sent_event = False
worker_hijack_root_logger = False

# Task modules the worker loads; the API never imports them (it enqueues by name).
imports = ("workers.tasks",)

# --- beat: periodic maintenance (exactly one beat process runs) ---
def _every(task: str, seconds: float) -> dict:
    # expires: a run that could not start before the next one is due is dropped, not stacked
    return {"task": str(task), "schedule": seconds, "options": {"queue": "maintenance", "expires": seconds * 0.9}}


beat_schedule = {
    "reconcile-provider-voices": _every(Task.RECONCILE, 300.0),
    "sweep-due-voice-deletions": _every(Task.SWEEP_DELETIONS, 30.0),
    "reset-monthly-quotas": _every(Task.RESET_QUOTAS, 3600.0),
    "purge-idle-voices": _every(Task.PURGE_IDLE_VOICES, 300.0),
    "refresh-pool-capacity": _every(Task.REFRESH_CAPACITY, 900.0),
    "requeue-stranded-jobs": _every(Task.REQUEUE_STRANDED_JOBS, 60.0),
}
