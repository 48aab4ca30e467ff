"""The `job_task` decorator: everything a job task does besides its one service call.

It loads the job, skips it when a redelivered message finds it already finished, marks it
running, hands the body a `progress(stage, fraction)` callback, and maps the outcome:
AppError -> failed with that error; a store outage -> retried with backoff (the job stays
running; nothing is lost); anything else -> failed with INTERNAL_ERROR after logging.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from celery import Task
from celery.exceptions import Reject, SoftTimeLimitExceeded, TimeLimitExceeded

from shared import metrics
from shared.errors import AppError, JobTimedOut
from shared.jobs.celery_app import app
from shared.jobs.model import KINDS
from shared.jobs.service import StageClock
from shared.stores import STORE_DOWN_ERRORS
from workers import runtime

log = logging.getLogger("workers.job")

Progress = Callable[[str, float | None], None]




class JobTask(Task):
    """Fails the job when the hard time limit killed its run. Celery calls `on_failure` for that
    in the worker's main process (the pool child is gone, so the body's own handlers never
    ran); without this the job would stay `running`, holding its characters, until the
    stranded-job sweeper noticed it half an hour later."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        if isinstance(exc, TimeLimitExceeded) and args:
            log.error("job killed by the hard time limit", extra={"job_id": args[0]})
            runtime.jobs().fail(args[0], JobTimedOut("The job took too long and was stopped."))


def job_task(name: str, *, max_store_retries: int = 10):
    # the job kind, for metric labels: known from the task name, before the job is even loaded
    kind = next((k for k, job_kind in KINDS.items() if job_kind.task == name), name)

    def decorate(body: Callable[[dict[str, Any], Progress], dict[str, Any]]):
        @app.task(name=str(name), bind=True, base=JobTask, max_retries=max_store_retries, ignore_result=True)
        @functools.wraps(body)
        def run(self, job_id: str) -> None:
            timer = metrics.JobTimer(kind)
            try:
                jobs = runtime.jobs()
                job = jobs.start(job_id)
                if job is None:
                    log.info("job already finished; redelivery ignored")
                    return
                timer.start(job=job)
                clock = StageClock()  # per-stage seconds, shown on the job as `timings`

                def progress(stage: str, fraction: float | None = None) -> None:
                    timer.stage(stage)
                    jobs.stage(job_id, stage, fraction, timings=clock.enter(stage))

                result = body(job, progress)
                jobs.succeed(job_id, result, timings=clock.enter("done"))
                timer.finish()
            except AppError as exc:
                log.info("job failed", extra={"error": exc.code, "reason": exc.message})
                runtime.jobs().fail(job_id, exc)
                timer.finish(exc.code)
            except STORE_DOWN_ERRORS as exc:
                # Redis or MongoDB is away: retry the whole (idempotent) task later. Past the
                # last retry the job stays as it is and the stranded-job sweeper re-sends it.
                if self.request.retries >= self.max_retries:
                    log.error("store still unavailable; leaving the job to the sweeper",
                              extra={"error_type": type(exc).__name__})
                    return
                delay = min(60, 2 ** self.request.retries)
                log.warning("store unavailable; retrying", extra={"error_type": type(exc).__name__,
                                                                 "retry_in_s": delay})
                try:
                    raise self.retry(exc=exc, countdown=delay)
                except Reject as rejected:
                    # The broker is the store that is down, so the retry could not be sent and
                    # Celery would drop this message (Reject requeue=False), stranding the job.
                    # Put it back instead: if the broker cannot take even that, the message
                    # stays unacknowledged and comes back after the visibility timeout.
                    log.warning("retry not sent (broker unavailable); message requeued",
                                extra={"error_type": type(exc).__name__})
                    raise Reject(rejected.reason, requeue=True) from exc
            except SoftTimeLimitExceeded:
                runtime.jobs().fail(job_id, JobTimedOut("The job took too long and was stopped."))
                timer.finish(JobTimedOut.code)
            except Exception:
                log.exception("job crashed")
                runtime.jobs().fail(job_id, AppError("The job failed unexpectedly."))
                timer.finish(AppError.code)
            finally:
                timer.close()  # a run retried (store down) ends without an outcome

        return run

    return decorate
