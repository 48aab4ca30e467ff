"""Maintenance queue: beat's periodic upkeep and the diagnostic job. Every task is idempotent
and takes a short lock, so a second beat (which must not happen) would do no harm."""

from __future__ import annotations

import logging
from datetime import timedelta

from shared.diagnostics import run_diagnostics
from shared.jobs.celery_app import app
from shared.pool import maintenance as upkeep
from shared.voices.cleanup import enqueue_due_deletions
from workers import runtime
from workers.jobtask import job_task

log = logging.getLogger(__name__)


@job_task("maintenance.diagnostic")
def diagnostic(job, progress):
    return run_diagnostics(runtime.settings(), runtime.db(), runtime.redis(), progress)


@job_task("maintenance.reconcile_job")
def reconcile_job(job, progress):
    """Reconciliation asked for by an operator (POST /admin/reconcile), followed as a job."""
    progress("reconciling", 0.1)
    return upkeep.reconcile(runtime.pool())


@app.task(name="maintenance.reconcile", ignore_result=True)
def reconcile() -> dict | None:
    with upkeep.run_once(runtime.redis(), "reconcile") as mine:
        if not mine:
            return None
        report = upkeep.reconcile(runtime.pool())
        log.info("reconciled", extra={"report": report})
        return report


@app.task(name="maintenance.sweep_deletions", ignore_result=True)
def sweep_deletions() -> int:
    """Enqueue deletion of every voice whose `delete_after` has passed (a claim marker stops two
    beats from double-sending; the cleanup task itself checks the record)."""
    return enqueue_due_deletions(runtime.db(), lambda record_id: app.send_task(
        "cleanup.delete_voice", args=[record_id], queue="cleanup"))


@app.task(name="maintenance.reset_quotas", ignore_result=True)
def reset_quotas() -> int:
    return upkeep.reset_quotas(runtime.db())


@app.task(name="maintenance.purge_idle_voices", ignore_result=True)
def purge_idle_voices() -> int:
    settings = runtime.settings()
    if settings.eleven_labs_pool_eviction_strategy != "ttl":
        return 0
    with upkeep.run_once(runtime.redis(), "purge_idle") as mine:
        if not mine:
            return 0
        return upkeep.purge_idle(runtime.pool(), timedelta(minutes=settings.eleven_labs_pool_ttl_minutes))


@app.task(name="maintenance.refresh_capacity", ignore_result=True)
def refresh_capacity() -> dict:
    return runtime.pool().refresh_capacity()


@app.task(name="maintenance.requeue_stranded_jobs", ignore_result=True)
def requeue_stranded_jobs() -> dict | None:
    from shared.jobs.sweeper import requeue_stranded

    with upkeep.run_once(runtime.redis(), "requeue_stranded") as mine:
        if not mine:
            return None
        return requeue_stranded(runtime.jobs(), runtime.settings())
