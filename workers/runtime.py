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


def enqueue_voice_delete(record_id: str) -> None:
    """Send a voice record's remote deletion to the `cleanup` queue."""
    from shared.jobs.celery_app import app

    app.send_task(str(Task.DELETE_VOICE), args=[record_id], queue=Task.DELETE_VOICE.queue)


def voice_provider():
    """The configured voice provider (ElevenLabs, or the offline stand-in)."""
    from shared.providers.factory import voice_provider as configured_provider

    s = get_settings()
    return configured_provider(s, mongo_db(s))


def pool():
    """The voice pool over the configured provider; failed eviction deletes go to `cleanup`."""
    from shared.pool.service import VoicePool

    s = get_settings()
    return VoicePool(mongo_db(s), redis(), voice_provider(), s, enqueue_delete=enqueue_voice_delete)


def clone_deps():
    """What a clone job needs: the stores, the voice pool and its provider (to score the voice)."""
    from shared.voices.clone import CloneDeps

    pool_ = pool()
    return CloneDeps(db=pool_.db, provider=pool_.provider, settings=pool_.settings, pool=pool_)


def perform_deps():
    """What a perform job needs: the stores, the voice pool and provider, the text generators."""
    from shared.perform.service import PerformDeps
    from shared.perform.text.factory import fallback_text_generator, text_generator

    pool_ = pool()
    return PerformDeps(db=pool_.db, provider=pool_.provider, generator=text_generator(pool_.settings),
                       fallback=fallback_text_generator(), settings=pool_.settings, pool=pool_)
