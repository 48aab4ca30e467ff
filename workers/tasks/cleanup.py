"""Cleanup queue: delete remote voices (replaced or evicted), with backoff; give up visibly."""

from __future__ import annotations

import logging

from shared.errors import ProviderError
from shared.jobs.celery_app import app
from shared.jobs.tasks import Task
from shared.pool import records
from shared.pool.remote import delete_remote_voice
from workers import runtime

log = logging.getLogger(__name__)
MAX_DELETE_RETRIES = 6


@app.task(name=str(Task.DELETE_VOICE), bind=True, max_retries=MAX_DELETE_RETRIES, ignore_result=True)
def delete_voice(self, record_id: str) -> str:
    db = runtime.db()
    try:
        return delete_remote_voice(db, runtime.voice_provider(), record_id)
    except ProviderError as exc:
        if self.request.retries >= MAX_DELETE_RETRIES or not exc.retryable:
            # visible to reconciliation, which retries it later
            records.mark_delete_failed(db, record_id, exc.to_dict())
            log.warning("voice deletion gave up", extra={"record_id": record_id, "error": exc.code})
            return "delete_failed"
        # exponential backoff with jitter, kept far below the visibility timeout
        countdown = min(300, 2 ** self.request.retries * 5)
        raise self.retry(exc=exc, countdown=countdown)
