"""Maintenance queue tasks."""

from __future__ import annotations

from shared.diagnostics import run_diagnostics
from workers import runtime
from workers.jobtask import job_task


@job_task("maintenance.diagnostic")
def diagnostic(job, progress):
    return run_diagnostics(runtime.settings(), runtime.db(), runtime.redis(), progress)
