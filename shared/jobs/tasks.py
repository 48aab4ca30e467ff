"""Every Celery task name, in one place: the workers register their tasks under these names,
the API and the domain send by them (never importing a task body), and beat schedules them.
A name starts with its queue (celeryconfig routes and time limits go by that prefix)."""

from __future__ import annotations

from enum import StrEnum


class Task(StrEnum):
    CLONE = "clone.run"
    PERFORM = "perform.run"
    DELETE_VOICE = "cleanup.delete_voice"
    DIAGNOSTIC = "maintenance.diagnostic"
    RECONCILE_JOB = "maintenance.reconcile_job"
    RECONCILE = "maintenance.reconcile"
    SWEEP_DELETIONS = "maintenance.sweep_deletions"
    RESET_QUOTAS = "maintenance.reset_quotas"
    PURGE_IDLE_VOICES = "maintenance.purge_idle_voices"
    REFRESH_CAPACITY = "maintenance.refresh_capacity"
    REQUEUE_STRANDED_JOBS = "maintenance.requeue_stranded_jobs"
    CANARY = "system.canary"

    @property
    def queue(self) -> str:
        return self.value.split(".", 1)[0]
