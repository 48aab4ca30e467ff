"""The one Celery application. The API uses it only to send tasks by name; workers, beat and
Flower load the same object with the task modules listed in `celeryconfig.imports`."""

from __future__ import annotations

import threading

from celery import Celery
from celery.signals import before_task_publish

from shared.logs import request_id_var

app = Celery("newvisions")
app.config_from_object("celeryconfig")


@before_task_publish.connect
def _propagate_request_id(headers=None, **_):
    """Carry the current request id into every task message (read back in workers)."""
    rid = request_id_var.get()
    if headers is not None and rid and "request_id" not in headers:
        headers["request_id"] = rid


_producers: dict[str, Celery] = {}
_producers_lock = threading.Lock()


def producer_for(broker_url: str, backend_url: str = "") -> Celery:
    """A Celery app that sends to `broker_url`, for a process whose settings were given
    explicitly (the API built by create_app(settings), tests with their own stores); it shares
    every other setting with the main app, and declares queues as that broker wants them
    (shared/jobs/broker.py). Its result backend is `backend_url`, else a Redis broker itself,
    else the main app's. Workers use `app` itself."""
    if not broker_url or broker_url == app.conf.broker_url:
        return app
    with _producers_lock:
        producer = _producers.get(broker_url)
        if producer is None:
            from shared.config import get_settings
            from shared.jobs import broker

            producer = Celery("newvisions", set_as_current=False)
            producer.config_from_object("celeryconfig")
            producer.conf.update(broker_url=broker_url, **broker.celery_settings(broker_url, get_settings()))
            if backend_url or not broker.is_amqp(broker_url):
                producer.conf.update(result_backend=backend_url or broker_url)
            _producers[broker_url] = producer
        return producer
