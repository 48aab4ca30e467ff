"""Maintenance queue tasks."""

from __future__ import annotations

from shared.diagnostics import run_diagnostics
from shared.jobs.celery_app import app
from shared.voices.cleanup import enqueue_due_deletions
from workers import runtime
from workers.jobtask import job_task


@job_task("maintenance.diagnostic")
def diagnostic(job, progress):
    return run_diagnostics(runtime.settings(), runtime.db(), runtime.redis(), progress)


@app.task(name="maintenance.sweep_deletions", ignore_result=True)
def sweep_deletions() -> int:
    """Enqueue deletion of every voice whose `delete_after` has passed (idempotent: the
    cleanup task checks the record, and a claim marker stops two beats double-sending)."""
    return enqueue_due_deletions(runtime.db(), lambda record_id: app.send_task(
        "cleanup.delete_voice", args=[record_id], queue="cleanup"))
