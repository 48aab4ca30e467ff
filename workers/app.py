"""Entry point for `celery -A workers.app ...` (worker, beat, flower)."""

from __future__ import annotations

import logging
import os

# One BLAS thread per process: the pool's processes are the parallelism. numpy's default, a
# BLAS thread per core in every pool child, makes render_note burn ~50% more CPU (0.35 vs 0.23
# CPU-s for a 30 s note; bench/README.md). Set before anything imports numpy; an explicit
# setting in the environment wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from celery.signals import (
    celeryd_after_setup,
    setup_logging,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)

from shared import metrics
from shared.config import get_settings
from shared.jobs.celery_app import app
from shared.logs import configure_logging, job_id_var, request_id_var
from shared.stores import reset_clients

__all__ = ["app"]
log = logging.getLogger("workers")
_exporter = None  # this worker node's metrics HTTP server, in the parent process


@setup_logging.connect
def _logging(**_):
    configure_logging(get_settings().log_level)


@worker_process_init.connect
def _fresh_clients_after_fork(**_):
    # MongoClient and redis pools are not fork-safe: each pool child opens its own. The parent
    # may hold clients too (it fails jobs killed by the hard time limit): never close those.
    reset_clients(close=False)


@celeryd_after_setup.connect
def _consume_canary_queues(instance=None, **_):
    # On RabbitMQ readiness canaries have a small queue beside each job queue
    # (shared/jobs/broker.py): a worker consumes the canary queue of every queue it consumes
    # (-Q), so its answer proves that its consumer is alive.
    from shared.jobs.broker import canary_queue

    queues = instance.app.amqp.queues
    url = instance.app.conf.broker_url
    for name in list(queues.consume_from):
        canary = canary_queue(name, url)
        if canary != name and canary in queues:
            queues.select_add(queues[canary])


@worker_init.connect
def _refuse_unsafe_production(**_):
    get_settings().require_for("worker")


@worker_init.connect
def _fresh_metrics_dir(**_):
    # In the parent, before the pool forks: the previous run's value files would otherwise be
    # summed into this run's counters (and dead pids' gauges would linger).
    metrics.wipe_multiprocess_dir()


@worker_init.connect
def _preload_text_sdk(**_):
    # In the parent, before the pool forks: importing google-genai costs ~0.3 CPU-s (~0.8 s),
    # which every pool child would otherwise pay on its first perform (bench/README.md).
    # Only the import: clients (HTTP pools) are still built in the children.
    if get_settings().effective_text_provider == "gemini":
        import shared.perform.text.gemini  # noqa: F401


@celeryd_after_setup.connect
def _preload_note_dsp(instance=None, **_):
    # In the parent, before the pool forks, on a worker that renders notes: what each pool child
    # would otherwise make on its first note (~0.3 CPU-s), made once with its pages shared: the
    # long noise bed (17.6 MB), LAME's gain at the notes' setting (an ffmpeg round trip), the
    # speaker encoder's weights (bench/README.md, "Worker CPU per perform job").
    if "perform" in instance.app.amqp.queues.consume_from:
        from shared.audio.mix import warm
        from shared.audio.speaker.encoder import load_weights

        warm()
        load_weights()


@worker_ready.connect
def _serve_metrics(**_):
    # One exporter per worker node, in the parent, summing every pool child's files; started
    # once the node consumes, so "exporter up" also means "worker up".
    global _exporter
    settings = get_settings()
    if settings.worker_metrics_port and _exporter is None:
        try:
            _exporter = metrics.start_worker_exporter(settings.worker_metrics_port, settings.worker_metrics_host)
        except OSError as exc:  # port taken: keep consuming, without metrics
            log.error("worker metrics exporter could not start", extra={
                "port": settings.worker_metrics_port, "error_type": type(exc).__name__})
            return
        log.info("worker metrics exporter listening", extra={
            "host": settings.worker_metrics_host, "port": settings.worker_metrics_port})


@worker_shutdown.connect
def _stop_metrics(**_):
    if _exporter is not None:
        _exporter.shutdown()


@worker_process_shutdown.connect
def _child_metrics_dead(pid=None, **_):
    metrics.mark_process_dead(pid or os.getpid())


@task_prerun.connect
def _bind_context(task=None, task_id=None, args=None, **_):
    request_id_var.set(task.request.get("request_id") if task is not None else None)
    job_id_var.set(args[0] if args and isinstance(args[0], str) else task_id)


@task_postrun.connect
def _clear_context(**_):
    request_id_var.set(None)
    job_id_var.set(None)
