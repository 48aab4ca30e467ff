"""Maintenance queue: beat's periodic upkeep and the diagnostic job. Every task is idempotent
and takes a short lock, so a second beat (which must not happen) would do no harm."""

from __future__ import annotations

from datetime import timedelta

from shared.diagnostics import run_diagnostics
from shared.jobs.sweeper import requeue_stranded
from shared.jobs.tasks import Task
from shared.pool import maintenance as upkeep
from shared.voices.cleanup import enqueue_due_deletions
from workers import runtime
from workers.beattask import beat_task
from workers.jobtask import job_task


@job_task(Task.DIAGNOSTIC)
def diagnostic(job, progress):
    return run_diagnostics(runtime.settings(), runtime.db(), runtime.redis(), progress)


@job_task(Task.RECONCILE_JOB)
def reconcile_job(job, progress):
    """Reconciliation asked for by an operator (POST /admin/reconcile), followed as a job."""
    progress("reconciling", 0.1)
    return upkeep.reconcile(runtime.pool())


@beat_task(Task.RECONCILE, lock="reconcile")
def reconcile() -> dict:
    return upkeep.reconcile(runtime.pool())


@beat_task(Task.SWEEP_DELETIONS)
def sweep_deletions() -> int:
    """Enqueue deletion of every voice whose `delete_after` has passed (a claim marker stops two
    beats from double-sending; the cleanup task itself checks the record)."""
    return enqueue_due_deletions(runtime.db(), runtime.enqueue_voice_delete)


@beat_task(Task.RESET_QUOTAS)
def reset_quotas() -> int:
    return upkeep.reset_quotas(runtime.db())


@beat_task(Task.PURGE_IDLE_VOICES, lock="purge_idle")
def purge_idle_voices() -> int:
    settings = runtime.settings()
    if settings.pool_eviction_strategy != "ttl":
        return 0
    return upkeep.purge_idle(runtime.pool(), timedelta(minutes=settings.pool_ttl_minutes))


@beat_task(Task.REFRESH_CAPACITY)
def refresh_capacity() -> dict:
    return runtime.pool().refresh_capacity()


@beat_task(Task.REQUEUE_STRANDED_JOBS, lock="requeue_stranded")
def requeue_stranded_jobs() -> dict:
    return requeue_stranded(runtime.jobs(), runtime.settings())
