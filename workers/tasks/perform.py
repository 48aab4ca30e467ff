"""Perform queue: speak an AI-written voice note in the user's voice."""

from __future__ import annotations

from shared.jobs.tasks import Task
from shared.perform.service import run_perform
from workers import runtime
from workers.jobtask import job_task


@job_task(Task.PERFORM)
def perform(job, progress):
    return run_perform(job, runtime.perform_deps(), progress)
