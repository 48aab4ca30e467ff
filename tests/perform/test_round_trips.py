"""MongoDB round trips on the hot path, counted with command monitoring: a regression check that,
unlike a time, does not depend on how loaded the machine is.

Targets: at most 1 per `POST /perform`, at most 12 per perform job on a warm voice. The API is
served in this process and the job body runs here through the real Celery task function (its
broker has no consumer, so no worker takes the job first), against the fake ElevenLabs and
Gemini servers over loopback HTTP.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import numpy as np
import pytest
from bson import ObjectId

from shared.config import Settings
from tests.conftest import UserFactory, api_client, make_settings

SUBMIT_MAX = 1
PERFORM_MAX = 12


@dataclass
class CountedStack:
    settings: Settings
    client: httpx.Client
    users: UserFactory
    counter: object


@pytest.fixture(scope="module")
def counted(base_env, redis_url, db) -> Iterator[CountedStack]:
    from api.main import create_app
    from shared import stores
    from shared.bootstrap import ensure_indexes
    from tests.fakes.elevenlabs import FakeElevenLabs
    from tests.fakes.elevenlabs import create_app as fake_app
    from tests.fakes.gemini import running_fake_gemini
    from tests.fakes.server import serve

    fake = FakeElevenLabs(api_key="fake-eleven-key", voice_limit=20)
    with serve(fake_app(fake)) as fake_url, running_fake_gemini("fake-gemini-key") as (_, gemini_url):
        settings = make_settings({
            **base_env, "REDIS_URL": redis_url.rsplit("/", 1)[0] + "/9",  # a broker nobody consumes
            "MONGO_DB": f"{base_env['MONGO_DB']}_roundtrips", "VOICE_PROVIDER": "elevenlabs",
            "ELEVEN_LABS_API_KEY": "fake-eleven-key", "ELEVEN_LABS_BASE_URL": fake_url,
            "TEXT_PROVIDER": "gemini", "GEMINI_API_KEY": "fake-gemini-key", "GEMINI_BASE_URL": gemini_url,
            "RATE_LIMIT_PERFORM": "1000/1m"})
        ensure_indexes(stores.mongo_db(settings))
        stores.redis_client(settings).flushdb()
        with stores.count_round_trips(settings) as counter, serve(create_app(settings)) as api, \
                api_client(api, timeout=60) as client:
            yield CountedStack(settings, client, UserFactory(client, stores.mongo_db(settings)), counter)


def _with_warm_voice(stack: CountedStack) -> tuple[dict, dict]:
    """A user whose voice is ready at the provider, as a finished clone leaves it."""
    from shared.audio.codec import encode_mp3
    from shared.stores import mongo_db
    from tests.conftest import pool_for

    user, headers = stack.users()
    db = mongo_db(stack.settings)
    mp3 = encode_mp3(np.zeros(8000, dtype=np.float32), 16000, 64)
    record = pool_for(stack.settings, db).create_voice(
        user["id"], hashlib.sha256(user["id"].encode()).hexdigest(), mp3, "round-trip test")
    db["users"].update_one({"_id": ObjectId(user["id"])}, {"$set": {
        "voice_clone_id": record["voice_id"], "voice_record_id": record["_id"], "voice_state": "ready"}})
    return user, headers


def _submit(stack: CountedStack, headers: dict, topic: str) -> tuple[str, list[str]]:
    stack.counter.take()
    resp = stack.client.post("/perform", headers=headers, json={"routine_type": "gratitude", "topic": topic})
    assert resp.status_code == 202, resp.text
    return resp.json()["job_id"], stack.counter.take()


def _run_job_here(stack: CountedStack, job_id: str, monkeypatch) -> list[str]:
    from workers import runtime
    from workers.tasks.perform import perform

    monkeypatch.setattr(runtime, "get_settings", lambda: stack.settings)
    stack.counter.take()
    perform.run(job_id)
    return stack.counter.take()


def test_submit_and_perform_stay_within_their_round_trips(counted, monkeypatch):
    user, headers = _with_warm_voice(counted)
    _submit(counted, headers, "a first walk in the snow")  # warms the API's caches
    job_id, submit = _submit(counted, headers, "my sister's wedding")
    first = _run_job_here(counted, job_id, monkeypatch)
    job_id2, _ = _submit(counted, headers, "the garden in spring")
    warm = _run_job_here(counted, job_id2, monkeypatch)

    job = counted.client.get(f"/jobs/{job_id2}", headers=headers).json()
    assert job["state"] == "succeeded", job  # counted a real, finished note
    assert counted.client.get(job["result"]["audio_url"], headers=headers).status_code == 200
    print(f"round trips: submit {len(submit)} {submit}; first perform {len(first)} "
          f"{first}; warm perform {len(warm)} {warm}")
    assert len(submit) <= SUBMIT_MAX, Counter(submit)
    assert len(warm) <= PERFORM_MAX, Counter(warm)
