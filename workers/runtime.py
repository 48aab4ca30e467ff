"""What tasks need from the process: settings, stores and the job store, built once."""

from __future__ import annotations

from pymongo.database import Database

from shared.config import Settings, get_settings
from shared.jobs.service import JobStore
from shared.stores import mongo_db, redis_client


def settings() -> Settings:
    return get_settings()


def db() -> Database:
    return mongo_db(get_settings())


def redis():
    return redis_client(get_settings())


def jobs() -> JobStore:
    s = get_settings()
    return JobStore(mongo_db(s), redis_client(s), s.job_status_ttl_s, broker_url=s.celery_broker_url)


def pool():
    """The voice pool over the configured provider; failed eviction deletes go to `cleanup`."""
    from shared.jobs.celery_app import app
    from shared.pool.service import VoicePool
    from shared.providers.factory import voice_provider

    s, d = get_settings(), db()
    return VoicePool(d, redis(), voice_provider(s, d), s, enqueue_delete=lambda record_id: app.send_task(
        "cleanup.delete_voice", args=[record_id], queue="cleanup"))
