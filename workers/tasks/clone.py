"""Clone queue: turn an uploaded sample into the user's voice."""

from __future__ import annotations

from shared.jobs.tasks import Task
from shared.voices.clone import CloneDeps, run_clone
from workers import runtime
from workers.jobtask import job_task


@job_task(Task.CLONE)
def clone(job, progress):
    pool = runtime.pool()
    return run_clone(job, CloneDeps(db=pool.db, provider=pool.provider, settings=pool.settings, pool=pool),
                     progress)
