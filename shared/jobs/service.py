"""Create jobs, move them through their states, and read their live status.

The MongoDB record is the durable truth of where a job is: written when it is created, when a
run starts and when it ends. Every transition, stages included, is mirrored into Redis (fast
polling without touching MongoDB) and published on the job's pub/sub channel (SSE), through
one Lua script that refuses stale sequence numbers so a late writer can never move a job
backwards. A run's intermediate stages live only there: the worker that started the run keeps
the job's document and numbers the stages within the block of sequence numbers its start
reserved (`SEQ_BLOCK`), so any later durable transition, by any process, sorts after them.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import pymongo
import redis
from pymongo.database import Database

from shared.clock import now
from shared.errors import AppError, NotFound, ServiceUnavailable, ValidationFailed
from shared.jobs.model import KINDS, TERMINAL_STATES, JobView, view_of
from shared.logs import request_id_var
from shared.stores import STORE_DOWN_ERRORS

log = logging.getLogger(__name__)

KEY_PREFIX = "nv:job:"
#: a running job's mirror unchanged for this long is checked against MongoDB when read
STALE_MIRROR_S = 20
CHANNEL_PREFIX = "nv:job-events:"
#: a durable transition advances the sequence by this much; the stages of a run fit in between
SEQ_BLOCK = 100

_MIRROR_LUA = """
local cur = redis.call('HGET', KEYS[1], 'seq')
if cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'owner', ARGV[2], 'view', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('PUBLISH', KEYS[2], ARGV[3])
return 1
"""


#: field of a job's Redis mirror set once its message was handed to the broker
SENT_FIELD = "sent"


def new_job_id() -> str:
    return uuid.uuid4().hex


def status_key(job_id: str) -> str:
    return KEY_PREFIX + job_id


def events_channel(job_id: str) -> str:
    return CHANNEL_PREFIX + job_id


class JobStore:
    """Job persistence with its Redis mirror. One per process; cheap to construct."""

    def __init__(self, db: Database, r: redis.Redis, status_ttl_s: int = 7 * 24 * 3600,
                 broker_url: str = "") -> None:
        self.jobs = db["jobs"]
        self.broker_url = broker_url
        self.redis = r
        self.status_ttl_s = status_ttl_s
        self._mirror_script = r.register_script(_MIRROR_LUA)
        #: the runs this store started and has not ended: {job_id: (job document, its seq in MongoDB)}
        self._running: dict[str, tuple[dict[str, Any], int]] = {}

    # ----- reads -----

    def get(self, job_id: str, owner_id: str | None = None) -> JobView:
        """The job's current view; NotFound when absent or owned by someone else."""
        cached = self.redis.hmget(status_key(job_id), "owner", "view")
        if cached[1] is not None:
            if owner_id is not None and cached[0] != owner_id:
                raise NotFound("No such job.")
            view = JobView.model_validate_json(cached[1])
            if view.state in TERMINAL_STATES or (now() - view.updated_at).total_seconds() < STALE_MIRROR_S:
                return view
            return self._fresher(job_id, view)
        doc = self.jobs.find_one({"_id": job_id})
        if doc is None or (owner_id is not None and doc["user_id"] != owner_id):
            raise NotFound("No such job.")
        return view_of(doc)

    def _fresher(self, job_id: str, view: JobView) -> JobView:
        """A live job whose mirror has not moved for a while: MongoDB may know better (a
        transition made while Redis was down is never mirrored by a later one when it was the
        last). Re-mirror what it knows; keep the cached view if MongoDB is down too."""
        try:
            doc = self.jobs.find_one({"_id": job_id})
        except STORE_DOWN_ERRORS:
            return view
        if doc is None or doc.get("seq", 0) <= view.seq:
            return view
        fresh = view_of(doc)
        try:
            self._mirror(job_id, doc["user_id"], fresh)
        except redis.RedisError:
            pass
        return fresh

    # ----- creation (API side) -----

    def create(
        self,
        *,
        kind: str,
        user_id: str,
        payload: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        job_id: str | None = None,
    ) -> tuple[JobView, bool]:
        """Insert a queued job; with an idempotency key, return the existing one instead.
        `job_id`: an id the caller chose beforehand (see new_job_id), else a fresh one.

        Returns (view, created). The same key with a different request answers 422."""
        if kind not in KINDS:
            raise ValueError(f"unknown job kind {kind!r}")
        ts = now()
        doc: dict[str, Any] = {
            "_id": job_id or new_job_id(),
            "kind": kind,
            "user_id": user_id,
            "state": "queued",
            "stage": "queued",
            "progress": 0.0,
            "result": None,
            "error": None,
            "payload": payload or {},
            "request_id": request_id_var.get(),
            "created_at": ts,
            "updated_at": ts,
            "seq": 1,
        }
        if idempotency_key is not None:
            doc["idempotency_key"] = idempotency_key
            doc["request_hash"] = request_hash
        try:
            self.jobs.insert_one(doc)
        except pymongo.errors.DuplicateKeyError:
            existing = self.replay(user_id=user_id, kind=kind, idempotency_key=idempotency_key,
                                   request_hash=request_hash)
            if existing is None:  # pragma: no cover - the unique index says it exists
                raise
            return existing, False
        view = view_of(doc)
        try:
            self._mirror(doc["_id"], user_id, view)
        except redis.RedisError as exc:
            # Without Redis there is no broker either: refuse now rather than accept a job
            # that can never run. The record is closed so nothing looks pending.
            self.jobs.update_one({"_id": doc["_id"]}, {"$set": {
                "state": "failed", "stage": "failed", "finished_at": now(),
                "error": ServiceUnavailable("The job queue is unreachable.").to_dict()}})
            raise ServiceUnavailable("The job queue is unreachable; the job was not started.") from exc
        return view, True

    def replay(self, *, user_id: str, kind: str, idempotency_key: str, request_hash: str | None) -> JobView | None:
        """The job an earlier request with this Idempotency-Key started, or None. The same key
        with a different request is refused (422)."""
        existing = self.jobs.find_one({"user_id": user_id, "kind": kind, "idempotency_key": idempotency_key},
                                      {"_id": 1, "request_hash": 1})
        if existing is None:
            return None
        if existing.get("request_hash") != request_hash:
            raise ValidationFailed(
                "This Idempotency-Key was already used with a different request body.",
                action="Use a new Idempotency-Key for a different request.",
            )
        return self.get(existing["_id"], owner_id=user_id)

    def submit(self, *, kind: str, user_id: str, **kwargs) -> tuple[JobView, bool]:
        """Create the job, then enqueue it; the message is sent only after the record exists.

        If the broker refuses the message the job is marked failed (never left queued with no
        message) and the caller gets 503."""
        view, created = self.create(kind=kind, user_id=user_id, **kwargs)
        if created:
            self.enqueue(view.job_id, kind)
        return view, created

    def enqueue(self, job_id: str, kind: str, *, fail_if_unsent: bool = True) -> None:
        """Send the job's message. If the broker refuses it, the job is failed and the caller
        gets 503 (`fail_if_unsent`, the API: the client learns its request did not start), or
        only the 503 is raised (the sweeper, which tries again on its next round).

        Once the message is sent the job runs, so nothing after the send may fail the request:
        the "sent" mark (in the job's Redis mirror, beside the broker's own messages when Redis
        is the broker) is best effort, and a missing mark only makes the sweeper send again."""
        from shared.jobs.celery_app import producer_for  # deferred: importing Celery is not free

        job_kind = KINDS[kind]
        try:
            # ignore_result: nobody waits on a Celery result (the job record is the result), so
            # the producer must not subscribe to a result channel for every message
            producer_for(self.broker_url).send_task(
                str(job_kind.task), args=[job_id], queue=job_kind.queue, task_id=job_id, ignore_result=True,
                # what Celery would compute with its saferepr walk on every send, given outright
                argsrepr=repr([job_id]), kwargsrepr="{}",
                retry=True, retry_policy={"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2,
                                          "interval_max": 0.5})
        except Exception as exc:  # kombu raises OperationalError and friends
            log.error("enqueue failed", extra={"job_id": job_id, "error_type": type(exc).__name__})
            err = ServiceUnavailable("The job queue is unreachable; the job was not started.")
            if fail_if_unsent:
                try:
                    self.fail(job_id, err)
                except Exception:  # the store may be down too; the sweeper sends it later
                    log.exception("could not mark unqueued job failed", extra={"job_id": job_id})
            raise err from exc
        try:
            self.redis.hset(status_key(job_id), SENT_FIELD, f"{time.time():.3f}")
        except redis.RedisError:
            log.warning("job sent, but its sent mark was not saved", extra={"job_id": job_id})

    def was_sent(self, job_ids: list[str]) -> dict[str, bool]:
        """Whether each job's message was handed to the broker (its sent mark exists)."""
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hexists(status_key(job_id), SENT_FIELD)
        return dict(zip(job_ids, (bool(v) for v in pipe.execute())))

    # ----- transitions (worker side) -----

    def start(self, job_id: str, stage: str = "starting") -> dict[str, Any] | None:
        """Mark running (two round trips: the update, then the read of the job); None when the
        job is already finished (a redelivered message). `$min` sets `started_at` on the first
        run only."""
        doc = self._transition(job_id, {"state": "running", "stage": stage},
                               inc={"attempts": 1}, minimum={"started_at": now()})
        if doc is not None:
            self._running[job_id] = (doc, doc["seq"])
        return doc

    def stage(self, job_id: str, stage: str, progress: float | None = None,
              timings: dict[str, float] | None = None) -> None:
        """Move a running job to a stage. For a run this process started, Redis only: the view
        is mirrored and published, MongoDB is not written (the run's end is)."""
        changes: dict[str, Any] = {"stage": stage}
        if progress is not None:
            changes["progress"] = round(max(0.0, min(1.0, progress)), 4)
        if timings is not None:
            changes["timings"] = timings
        doc, durable_seq = self._running.get(job_id, (None, 0))
        if doc is None or doc["seq"] + 1 >= durable_seq + SEQ_BLOCK:  # not ours, or its block is used up
            self._transition(job_id, changes)
            return
        doc.update(changes, updated_at=now(), seq=doc["seq"] + 1)
        self._mirror_quietly(job_id, doc)

    def succeed(self, job_id: str, result: dict[str, Any],
                timings: dict[str, float] | None = None) -> dict[str, Any] | None:
        changes = {"state": "succeeded", "stage": "done", "progress": 1.0, "result": result, "error": None,
                   "finished_at": now()}
        if timings is not None:
            changes["timings"] = timings
        return self._end(job_id, changes)

    def _end(self, job_id: str, changes: dict[str, Any], *, show: bool = True) -> dict[str, Any] | None:
        """The run's last transition. For a run this process started, one round trip: the
        view is built from the document it holds, numbered past its block. `show=False`: the
        caller mirrors it later."""
        doc, durable_seq = self._running.pop(job_id, (None, 0))
        if doc is None:
            return self._transition(job_id, changes, show=show)
        ts = now()
        matched = self.jobs.update_one({"_id": job_id, "state": {"$nin": list(TERMINAL_STATES)}},
                                       {"$set": {**changes, "updated_at": ts}, "$inc": {"seq": SEQ_BLOCK}})
        if matched.matched_count == 0:
            return None  # another run of the job ended it first
        doc.update(changes, updated_at=ts, seq=durable_seq + SEQ_BLOCK)
        if show:
            self._mirror_quietly(job_id, doc)
        return doc

    def fail(self, job_id: str, error: AppError | dict[str, Any]) -> dict[str, Any] | None:
        """Mark the job failed (None if it had already finished), run its kind's failure hook,
        then show the failure: a client that sees `failed` finds what the job held given back.
        The record says `undo_pending` until the hook has run, so the sweeper finishes the undo
        if this process dies or a store drops in between."""
        body = error.to_dict() if isinstance(error, AppError) else dict(error)
        body = {k: body[k] for k in ("error", "message", "action")}
        doc = self._end(job_id, {"state": "failed", "stage": "failed", "error": body,
                                 "finished_at": now(), "undo_pending": True}, show=False)
        if doc is not None:
            self.undo(doc)
            self._mirror_quietly(job_id, doc)
        return doc

    def undo(self, doc: dict[str, Any]) -> bool:
        """Run the failed job's failure hook (idempotent) and clear its `undo_pending` mark."""
        kind = KINDS.get(doc["kind"])
        hook = kind.failure_hook() if kind else None
        try:
            if hook is not None:
                hook(self.jobs.database, doc, doc.get("error") or {})
            self.jobs.update_one({"_id": doc["_id"]}, {"$unset": {"undo_pending": ""}})
        except Exception:  # noqa: BLE001 - the mark stays; the sweeper runs the hook again
            log.exception("failed job's undo did not complete; the sweeper will retry it",
                          extra={"job_id": doc["_id"]})
            return False
        return True

    def _transition(self, job_id: str, changes: dict[str, Any], *,
                    inc: dict[str, int] | None = None,
                    minimum: dict[str, Any] | None = None, show: bool = True) -> dict[str, Any] | None:
        update: dict[str, Any] = {"$set": {**changes, "updated_at": now()},
                                  "$inc": {"seq": SEQ_BLOCK, **(inc or {})}}
        if minimum:
            update["$min"] = minimum
        # update_one + find_one rather than find_one_and_update: the embedded SecantusDB runs
        # findAndModify as a scan of the whole collection, growing with every job, and these
        # two through the _id index (figures in bench/README.md). The read may already show a
        # later transition: its higher seq is what gets mirrored then, and the mirror script
        # drops the older one.
        if self.jobs.update_one({"_id": job_id, "state": {"$nin": list(TERMINAL_STATES)}}, update).matched_count == 0:
            return None
        doc = self.jobs.find_one({"_id": job_id})
        if doc is None:
            return None
        if show:
            self._mirror_quietly(job_id, doc)
        return doc

    def _mirror_quietly(self, job_id: str, doc: dict[str, Any]) -> None:
        try:
            self._mirror(job_id, doc["user_id"], view_of(doc))
        except redis.RedisError:
            # MongoDB holds the truth; the poll falls back to it and the next transition
            # re-mirrors. Failing the task over a status cache would lose real work.
            log.warning("job status mirror failed", extra={"job_id": job_id})

    def _mirror(self, job_id: str, owner_id: str, view: JobView) -> None:
        self._mirror_script(
            keys=[status_key(job_id), events_channel(job_id)],
            args=[view.seq, owner_id, view.model_dump_json(), self.status_ttl_s],
        )


def save_work(db: Database, job_id: str, name: str, value: Any) -> Any:
    """Keep a piece of a job's work (`work.<name>`, e.g. the note's text) first-writer-wins, so
    every run of the job uses the same one; returns the value saved, this one or an earlier
    run's. (update_one, not find_one_and_update: the embedded SecantusDB scans the whole
    collection for a findAndModify; figures in bench/README.md.)"""
    field = f"work.{name}"
    if db["jobs"].update_one({"_id": job_id, field: {"$exists": False}}, {"$set": {field: value}}).matched_count:
        return value
    saved = db["jobs"].find_one({"_id": job_id}, {"work": 1}) or {}
    return (saved.get("work") or {}).get(name, value)


class StageClock:
    """Seconds spent in each stage of one run of a job, for the job's `timings`: `enter(stage)`
    closes the current stage and returns the totals so far (a stage entered twice is summed)."""

    def __init__(self, stage: str = "starting") -> None:
        self.stage, self.since = stage, time.monotonic()
        self.totals: dict[str, float] = {}

    def enter(self, stage: str) -> dict[str, float]:
        if stage != self.stage:
            t = time.monotonic()
            self.totals[self.stage] = round(self.totals.get(self.stage, 0.0) + t - self.since, 4)
            self.stage, self.since = stage, t
        return dict(self.totals)


def ensure_indexes(db: Database) -> None:
    jobs = db["jobs"]
    jobs.create_index([("user_id", 1), ("created_at", -1)])
    jobs.create_index([("state", 1), ("updated_at", 1)])
    jobs.create_index(
        [("user_id", 1), ("kind", 1), ("idempotency_key", 1)],
        unique=True,
        partialFilterExpression={"idempotency_key": {"$type": "string"}},
        name="idempotency_key_unique",
    )
