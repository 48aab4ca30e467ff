"""Clone queue: turn an uploaded sample into the user's voice."""

from __future__ import annotations

from shared.providers.factory import voice_provider
from shared.voices.clone import CloneDeps, run_clone
from workers import runtime
from workers.jobtask import job_task


@job_task("clone.run")
def clone(job, progress):
    settings, db = runtime.settings(), runtime.db()
    return run_clone(job, CloneDeps(db=db, provider=voice_provider(settings, db), settings=settings), progress)
