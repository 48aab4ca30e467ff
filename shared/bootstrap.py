"""Create every collection's indexes (idempotent), retrying until MongoDB answers."""

from __future__ import annotations

import logging
import threading

from pymongo.database import Database

from shared.config import Settings
from shared.stores import STORE_DOWN_ERRORS, mongo_db

log = logging.getLogger(__name__)


def ensure_indexes(db: Database) -> None:
    from shared.jobs import service as jobs
    from shared.pool import records
    from shared.providers.voice import local
    from shared.recordings import service as recordings
    from shared.users import service as users

    users.ensure_indexes(db)
    jobs.ensure_indexes(db)
    records.ensure_indexes(db)
    recordings.ensure_indexes(db)
    local.ensure_indexes(db)
    db["charges"].create_index([("user_id", 1), ("charged_at", -1)])


def ensure_indexes_with_retry(settings: Settings, stop: threading.Event, interval_s: float = 2.0) -> None:
    while not stop.is_set():
        try:
            ensure_indexes(mongo_db(settings))
            return
        except STORE_DOWN_ERRORS as exc:
            log.warning("indexes not created yet; retrying", extra={"error_type": type(exc).__name__})
            stop.wait(interval_s)
