"""The `beat_task` decorator: what every periodic upkeep task does besides its one call.

Beat runs each upkeep on a schedule; exactly one beat should run, but a second one (or a run
that overlaps the next) must do no harm. With `lock`, a run holds a short Redis lock and a
second run at the same time does nothing; every run logs its outcome and duration.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from shared.jobs.celery_app import app
from shared.pool.maintenance import run_once
from workers import runtime

log = logging.getLogger("workers.upkeep")


def beat_task(name: str, *, lock: str | None = None):
    def decorate(body: Callable[[], Any]):
        @app.task(name=str(name), ignore_result=True)
        @functools.wraps(body)
        def run() -> Any:
            started = time.monotonic()
            if lock is None:
                outcome = body()
            else:
                with run_once(runtime.redis(), lock) as mine:
                    if not mine:
                        log.info("upkeep skipped: another run holds its lock", extra={"task": name})
                        return None
                    outcome = body()
            log.info("upkeep done", extra={"task": name, "outcome": outcome,
                                           "seconds": round(time.monotonic() - started, 3)})
            return outcome

        return run

    return decorate
