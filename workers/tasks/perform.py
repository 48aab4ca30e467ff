"""Perform queue: speak an AI-written voice note in the user's voice."""

from __future__ import annotations

from shared.perform.service import PerformDeps, run_perform
from shared.perform.text.factory import fallback_text_generator, text_generator
from workers import runtime
from workers.jobtask import job_task


@job_task("perform.run")
def perform(job, progress):
    pool = runtime.pool()
    deps = PerformDeps(db=pool.db, jobs=runtime.jobs(), provider=pool.provider,
                       generator=text_generator(pool.settings), fallback=fallback_text_generator(),
                       settings=pool.settings, pool=pool)
    return run_perform(job, deps, progress)
