"""Readiness canary: answered by whichever worker consumes the queue it was sent to."""

from __future__ import annotations

from shared.jobs.canary import CANARY_TASK, answer
from shared.jobs.celery_app import app
from workers import runtime


@app.task(name=CANARY_TASK, bind=True, ignore_result=True, acks_late=False)
def canary(self, nonce: str, queue: str) -> None:
    answer(runtime.redis(), nonce, queue, self.request.hostname or "?")
