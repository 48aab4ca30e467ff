"""Voice cloning end to end through the API and a real worker on the local provider."""

from __future__ import annotations

import pytest
from bson import ObjectId

from shared.audio.codec import probe
from tests import samples
from tests.conftest import read_sse, wait_job

STAGES = ["decoding", "normalizing", "checking", "uploading", "saving"]


def upload(client, headers, data: bytes, name="sample.mp3", content_type="audio/mpeg"):
    return client.post("/user/voice", headers=headers, files={"file": (name, data, content_type)})


def local_voice_ids(db) -> set[str]:
    return {d["_id"] for d in db["local_provider_voices"].find({}, {"_id": 1})}


def clone_ok(client, headers, data: bytes, name="sample.mp3", content_type="audio/mpeg") -> dict:
    resp = upload(client, headers, data, name, content_type)
    assert resp.status_code == 202, resp.text
    job = wait_job(client, resp.json()["job_id"], headers, timeout_s=180)
    assert job["state"] == "succeeded", job["error"]
    return job


def test_upload_fixture_creates_ready_voice_with_stages(client, new_user, workers, db):
    _, headers = new_user()
    assert client.get("/user/voice/meta", headers=headers).json()["state"] == "none"
    resp = upload(client, headers, samples.original())
    assert resp.status_code == 202, resp.text
    body = resp.json()
    events = read_sse(client, body["events_url"], headers, timeout_s=180)
    job = events[-1]
    assert job["state"] == "succeeded", job["error"]
    stages = [e["stage"] for e in events]
    # every stage shows up, in order (fast transitions may coalesce for a late subscriber,
    # so check order on what we saw and presence on the durable record's result)
    seen = [s for s in stages if s in STAGES]
    assert seen == sorted(seen, key=STAGES.index)
    result = job["result"]
    assert result["action"] == "created"
    q = result["quality"]
    assert 35 <= q["duration_after_s"] <= 50
    assert q["speech_s"] >= 20
    assert abs(q["loudness_after_lufs"] - (-20.0)) < 0.6
    assert q["true_peak_dbtp"] <= -2.9

    meta = client.get("/user/voice/meta", headers=headers).json()
    assert meta["state"] == "ready"
    assert meta["voice_clone_id"] == result["voice_clone_id"]
    assert meta["voice_clone_id"] in local_voice_ids(db)
    assert meta["sample"]["quality"]["speech_s"] == q["speech_s"]
    assert meta["last_action"] == "created"

    source = client.get("/user/voice/source", headers=headers)
    assert source.status_code == 200 and source.headers["content-type"] == "audio/mpeg"
    info = probe(source.content)
    assert info.format_name == "mp3" and abs(info.duration_s - q["duration_after_s"]) < 0.5
    original = client.get("/user/voice/source", params={"original": "true"}, headers=headers)
    assert original.status_code == 200 and original.content == samples.original()


@pytest.mark.parametrize("fmt, ctype", [("wav", "audio/wav"), ("ogg", "audio/ogg"), ("webm", "audio/webm"),
                                        ("flac", "audio/flac"), ("m4a", "audio/mp4")])
def test_browser_and_common_containers_are_accepted(client, new_user, workers, fmt, ctype):
    _, headers = new_user()
    job = clone_ok(client, headers, samples.reencoded(fmt), f"sample.{fmt}", ctype)
    assert job["result"]["action"] == "created"
    assert client.get("/user/voice/meta", headers=headers).json()["state"] == "ready"


def test_mime_type_is_not_trusted(client, new_user, workers):
    _, headers = new_user()
    # real audio with a wrong MIME type and name is accepted ...
    clone_ok(client, headers, samples.reencoded("wav"), "notes.txt", "text/plain")
    # ... and a text file claiming to be audio is refused
    _, headers2 = new_user()
    resp = upload(client, headers2, samples.text_file(), "voice.mp3", "audio/mpeg")
    assert resp.status_code == 422 and resp.json()["error"] == "SAMPLE_UNSUPPORTED"


@pytest.mark.parametrize("name, data", [
    ("random", samples.random_bytes()),
    ("empty", b""),
    ("text", samples.text_file()),
])
def test_non_audio_refused_at_upload_and_nothing_written(client, new_user, db, name, data):
    user, headers = new_user()
    before = db["samples.files"].count_documents({"metadata.user_id": user["id"]})
    resp = upload(client, headers, data, f"{name}.mp3")
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["error"] == "SAMPLE_UNSUPPORTED" and body["action"]
    assert db["samples.files"].count_documents({"metadata.user_id": user["id"]}) == before
    assert db["jobs"].count_documents({"user_id": user["id"]}) == 0
    meta = client.get("/user/voice/meta", headers=headers).json()
    assert meta["state"] == "none" and meta["clone_job_id"] is None


@pytest.mark.parametrize("variant, code", [
    (lambda: samples.cut(10), "SAMPLE_TOO_SHORT"),
    (lambda: samples.clipped(20), "SAMPLE_CLIPPED"),
    (lambda: samples.near_silent(), "SAMPLE_TOO_QUIET"),
    (lambda: samples.truncated(0.1), None),
])
def test_bad_samples_fail_the_job_cleanly(client, new_user, workers, db, variant, code):
    user, headers = new_user()
    voices_before = local_voice_ids(db)
    resp = upload(client, headers, variant())
    if resp.status_code == 422:  # refused up front: also fine for a broken file
        assert code is None and resp.json()["error"] == "SAMPLE_UNSUPPORTED"
        return
    assert resp.status_code == 202, resp.text
    job = wait_job(client, resp.json()["job_id"], headers, timeout_s=180)
    assert job["state"] == "failed", job
    err = job["error"]
    if code:
        assert err["error"] == code
    else:
        assert err["error"] in ("SAMPLE_TOO_SHORT", "SAMPLE_UNSUPPORTED")
    assert err["message"] and err["action"]
    # nothing half-written: no voice at the provider, no dangling state or files
    assert local_voice_ids(db) == voices_before
    assert db["voices"].count_documents({"user_id": user["id"], "state": {"$ne": "deleted"}}) == 0
    meta = client.get("/user/voice/meta", headers=headers).json()
    assert meta["state"] == "failed" and meta["clone_job_id"] is None
    assert meta["last_error"]["error"] == err["error"]
    assert db["samples.files"].count_documents({"metadata.user_id": user["id"]}) == 0


def test_noisy_and_padded_samples_still_clone(client, new_user, workers):
    _, headers = new_user()
    job = clone_ok(client, headers, samples.padded_with_silence(20), "padded.wav", "audio/wav")
    q = job["result"]["quality"]
    assert q["duration_before_s"] > 85 and q["duration_after_s"] < 55  # the silence was trimmed
    _, headers = new_user()
    job = clone_ok(client, headers, samples.with_noise(0.003), "noisy.wav", "audio/wav")
    assert job["result"]["quality"]["snr_db"] < 60


def test_second_upload_while_cloning_is_409(client, new_user, workers):
    _, headers = new_user()
    first = upload(client, headers, samples.reencoded("wav"), "a.wav")
    assert first.status_code == 202
    second = upload(client, headers, samples.original())
    assert second.status_code == 409 and second.json()["error"] == "CLONE_IN_PROGRESS"
    assert wait_job(client, first.json()["job_id"], headers)["state"] == "succeeded"
    # once finished, a new upload is accepted again
    assert upload(client, headers, samples.original()).status_code == 202


def test_oversized_upload_refused_before_reading(client, new_user, settings):
    _, headers = new_user()
    big = b"\0" * (settings.sample_max_bytes + 200_000)
    resp = upload(client, headers, big, "big.wav", "audio/wav")
    assert resp.status_code == 413 and resp.json()["error"] == "SAMPLE_TOO_LARGE"


def test_same_sample_again_is_update_skipped_and_new_one_replaces(client, new_user, workers, db, settings):
    from shared.voices.cleanup import enqueue_due_deletions

    user, headers = new_user()
    first = clone_ok(client, headers, samples.original())["result"]
    again = clone_ok(client, headers, samples.original())["result"]
    assert again["action"] == "update_skipped"
    assert again["voice_clone_id"] == first["voice_clone_id"]
    assert db["voices"].count_documents({"user_id": user["id"]}) == 1

    updated = clone_ok(client, headers, samples.reencoded("flac"), "new.flac", "audio/flac")["result"]
    assert updated["action"] == "updated"
    assert updated["voice_clone_id"] != first["voice_clone_id"]
    meta = client.get("/user/voice/meta", headers=headers).json()
    assert meta["voice_clone_id"] == updated["voice_clone_id"]
    assert meta["voice_clone_previous_id"] == first["voice_clone_id"]
    old = db["voices"].find_one({"voice_id": first["voice_clone_id"]})
    assert old["state"] == "evicting" and old["delete_after"] is not None
    # the old voice is still usable during the grace period, then swept and deleted remotely
    assert first["voice_clone_id"] in local_voice_ids(db)
    db["voices"].update_one({"_id": old["_id"]}, {"$set": {"delete_after": old["created_at"]}})
    import time

    from shared.jobs.celery_app import producer_for

    producer = producer_for(settings.redis_url)
    sent = enqueue_due_deletions(db, lambda rid: producer.send_task("cleanup.delete_voice", args=[rid],
                                                                    queue="cleanup"))
    assert sent >= 1

    deadline = time.monotonic() + 30
    while db["voices"].find_one({"_id": old["_id"]})["state"] != "deleted":
        assert time.monotonic() < deadline, "old voice not deleted"
        time.sleep(0.2)
    assert first["voice_clone_id"] not in local_voice_ids(db)
    assert updated["voice_clone_id"] in local_voice_ids(db)


def test_clone_run_twice_for_one_job_creates_one_voice(db, settings, new_user):
    """A redelivered clone task (the first run finished its provider call) adopts, not duplicates."""
    from shared.jobs.service import JobStore
    from shared.providers.factory import voice_provider
    from shared.stores import redis_client
    from shared.voices.clone import CloneDeps, run_clone

    user, _ = new_user()
    user_doc = db["users"].find_one({"_id": ObjectId(user["id"])})
    store = JobStore(db, redis_client(settings), broker_url="redis://127.0.0.1:1/0")  # never delivered
    view, _ = store.create(kind="clone", user_id=user["id"], payload={})
    # store the original the way the API does, then run the body twice by hand
    from shared import storage

    oid = storage.put(db, storage.SAMPLES, samples.original(), "s.mp3", {"user_id": user["id"]})
    db["jobs"].update_one({"_id": view.job_id}, {"$set": {"payload": {"original_id": str(oid)}}})
    db["users"].update_one({"_id": user_doc["_id"]}, {"$set": {"clone_job": {"id": view.job_id, "since": None}}})
    job = db["jobs"].find_one({"_id": view.job_id})
    from tests.conftest import pool_for

    deps = CloneDeps(db=db, provider=voice_provider(settings, db), settings=settings, pool=pool_for(settings, db))
    before = local_voice_ids(db)
    first = run_clone(job, deps, lambda *_: None)
    second = run_clone(job, deps, lambda *_: None)
    assert first["voice_clone_id"] == second["voice_clone_id"]
    assert local_voice_ids(db) - before == {first["voice_clone_id"]}
    assert db["voices"].count_documents({"job_id": view.job_id}) == 1


def test_voice_routes_need_auth(client):
    assert client.get("/user/voice/meta").status_code == 401
    assert client.get("/user/voice/source").status_code == 401
    assert client.post("/user/voice", files={"file": ("a.mp3", b"x", "audio/mpeg")}).status_code == 401


def test_source_404_without_sample(client, new_user):
    _, headers = new_user()
    resp = client.get("/user/voice/source", headers=headers)
    assert resp.status_code == 404 and resp.json()["error"] == "NOT_FOUND"


def test_a_clone_that_finishes_before_the_upload_answers_leaves_the_account_free(client, new_user, workers, db,
                                                                                rds, settings):
    """The worker may finish the clone before the API has answered the upload: the reservation
    it releases must be the one the upload made, or the account stays "in progress"."""
    import time

    from shared.jobs.service import JobStore
    from shared.users.account import Account
    from shared.voices.clone import accept_upload

    class FinishedBeforeReturning(JobStore):
        def enqueue(self, job_id, kind, **kw):
            super().enqueue(job_id, kind, **kw)
            deadline = time.monotonic() + 120
            while db["jobs"].find_one({"_id": job_id})["state"] not in ("succeeded", "failed"):
                assert time.monotonic() < deadline, "the clone did not finish"
                time.sleep(0.2)

    user, headers = new_user()
    store = FinishedBeforeReturning(db, rds, settings.job_status_ttl_s, broker_url=settings.celery_broker_url)
    user_doc = db["users"].find_one({"_id": ObjectId(user["id"])})
    view = accept_upload(db, store, settings, Account.of(user_doc), samples.original(), "sample.mp3", "audio/mpeg")
    assert wait_job(client, view.job_id, headers)["state"] == "succeeded"
    assert db["users"].find_one({"_id": ObjectId(user["id"])}).get("clone_job") is None
    assert client.get("/user/voice/meta", headers=headers).json()["state"] == "ready"
    again = client.post("/user/voice", headers=headers, files={"file": ("s.mp3", samples.cut(40), "audio/mpeg")})
    assert again.status_code == 202, again.text
    wait_job(client, again.json()["job_id"], headers)
