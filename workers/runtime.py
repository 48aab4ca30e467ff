"""What tasks need from the process: settings, stores and the job store, built once."""

from __future__ import annotations

from pymongo.database import Database

from shared.config import Settings, get_settings
from shared.jobs.service import JobStore
from shared.jobs.tasks import Task
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
        str(Task.DELETE_VOICE), args=[record_id], queue=Task.DELETE_VOICE.queue))


def perform_deps():
    """What a perform job needs: the stores, the voice pool and provider, the text generators."""
    from shared.perform.service import PerformDeps
    from shared.perform.text.factory import fallback_text_generator, text_generator

    pool_ = pool()
    return PerformDeps(db=pool_.db, provider=pool_.provider, generator=text_generator(pool_.settings),
                       fallback=fallback_text_generator(), settings=pool_.settings, pool=pool_)
