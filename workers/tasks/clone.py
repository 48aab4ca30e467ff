"""Clone queue: turn an uploaded sample into the user's voice."""

from __future__ import annotations

from shared.jobs.tasks import Task
from shared.voices.clone import run_clone
from workers import runtime
from workers.jobtask import job_task


@job_task(Task.CLONE)
def clone(job, progress):
    return run_clone(job, runtime.clone_deps(), progress)
