"""Perform queue: speak an AI-written voice note in the user's voice."""

from __future__ import annotations

from shared.perform.service import PerformDeps, run_perform
from shared.providers.factory import fallback_text_generator, text_generator, voice_provider
from workers import runtime
from workers.jobtask import job_task


@job_task("perform.run")
def perform(job, progress):
    settings, db = runtime.settings(), runtime.db()
    deps = PerformDeps(db=db, jobs=runtime.jobs(), provider=voice_provider(settings, db),
                       generator=text_generator(settings), fallback=fallback_text_generator(), settings=settings)
    return run_perform(job, deps, progress)
