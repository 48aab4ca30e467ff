"""Entry point for `celery -A workers.app ...` (worker, beat, flower)."""

from __future__ import annotations

from celery.signals import setup_logging, task_postrun, task_prerun, worker_process_init

from shared.config import get_settings
from shared.jobs.celery_app import app
from shared.logs import configure_logging, job_id_var, request_id_var
from shared.stores import reset_clients

__all__ = ["app"]


@setup_logging.connect
def _logging(**_):
    configure_logging(get_settings().log_level)


@worker_process_init.connect
def _fresh_clients_after_fork(**_):
    # MongoClient and redis pools are not fork-safe: each pool child opens its own.
    reset_clients()


@task_prerun.connect
def _bind_context(task=None, task_id=None, args=None, **_):
    request_id_var.set(task.request.get("request_id") if task is not None else None)
    job_id_var.set(args[0] if args and isinstance(args[0], str) else task_id)


@task_postrun.connect
def _clear_context(**_):
    request_id_var.set(None)
    job_id_var.set(None)
