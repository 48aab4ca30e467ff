"""Perform end to end through real workers on the local providers (espeak-ng stand-in,
template composer): stages, audio, quota, idempotency, recordings."""

from __future__ import annotations

import concurrent.futures
import time

import numpy as np
import pytest
from bson import ObjectId

from shared.audio.codec import decode_to_mono
from shared.audio.loudness import integrated_loudness
from tests.conftest import read_sse, wait_job
from tests.perform.helpers import perform, perform_ok, user_with_voice

STAGES = ["reserving", "composing", "acquiring_voice", "synthesizing", "mixing", "storing"]


def test_routines_catalog(client):
    body = client.get("/routines").json()
    types = {r["type"] for r in body["routines"]}
    assert "morning_motivation" in types and len(types) >= 6
    for r in body["routines"]:
        assert set(r["languages"]) == {"english", "spanish"}
    es = client.get("/routines", params={"language": "spanish"}).json()["routines"][0]
    assert es["title"] == es["languages"]["spanish"]["title"]


def test_perform_end_to_end(on_broker, db):
    client, settings = on_broker.client, on_broker.settings
    user, headers = user_with_voice(client, on_broker.users)
    resp = perform(client, headers)
    assert resp.status_code == 202, resp.text
    accepted = resp.json()
    assert accepted["quota"]["charCount"] == 0 and accepted["quota"]["monthlyLimit"] == 4000
    events = read_sse(client, accepted["events_url"], headers, timeout_s=180)
    job = events[-1]
    assert job["state"] == "succeeded", job["error"]
    seen = [e["stage"] for e in events if e["stage"] in STAGES]
    assert seen == sorted(seen, key=STAGES.index)
    result = job["result"]
    chars = result["chars"]
    assert chars["raw"] == len(result["text"]) and chars["effective"] == chars["raw"]  # local cost factor 1.0
    assert result["charCount"] == chars["effective"] and result["monthlyLimit"] == 4000

    me = client.get("/user/me", headers=headers).json()
    assert me["charCount"] == chars["effective"] == me["charsUsedEffective"]
    assert me["charsUsedRaw"] == chars["raw"]

    listing = client.get("/recordings", headers=headers).json()
    assert listing["total"] == 1
    item = listing["items"][0]
    assert item["id"] == result["recording_id"] and item["routine_type"] == "morning_motivation"
    assert item["title"] == "Voice note" and item["chars_effective"] == chars["effective"]

    # one document holds the note and its MP3: nothing went to GridFS
    stored = db["recordings"].find_one({"job_id": job["job_id"]})
    assert len(stored["audio"]) == item["size"] and "file_id" not in stored
    assert db["recordings.files"].count_documents({"metadata.job_id": job["job_id"]}) == 0

    audio = client.get(item["audio_url"], headers=headers)
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/mpeg"
    assert int(audio.headers["content-length"]) == item["size"] == len(audio.content)
    pcm = decode_to_mono(audio.content, 44100)
    duration = len(pcm) / 44100
    assert abs(duration - result["duration_s"]) < 0.15
    # spoken text at a human pace, plus lead-in and tail of the fan bed
    words = len(result["text"].split())
    assert 0.2 * words < duration < 1.0 * words + 4
    loudness = integrated_loudness(pcm, 44100)
    assert abs(loudness - settings.note_target_lufs) <= 1.0
    # the fan bed is there before the voice starts (background on by default)
    lead = pcm[: int(0.5 * 44100)]
    assert 1e-4 < float(np.sqrt(np.mean(lead ** 2))) < 0.05


def test_background_off_means_silence_before_voice(client, new_user, workers):
    _, headers = user_with_voice(client, new_user, add_background_sound=False)
    job = perform_ok(client, headers)
    audio = client.get(job["result"]["audio_url"], headers=headers).content
    pcm = decode_to_mono(audio, 44100)
    assert float(np.max(np.abs(pcm[:2000]))) < 1e-3


def test_spanish_settings_give_spanish_text(client, new_user, workers):
    _, headers = user_with_voice(client, new_user, language="spanish")
    text = perform_ok(client, headers, topic="mi primera carrera")["result"]["text"].lower()
    spanish = sum(text.count(w) for w in (" de ", " que ", " y ", " la ", " el ", " tu ", " hoy "))
    english = sum(text.count(w) for w in (" the ", " and ", " you ", " today ", " of "))
    assert spanish > 3 and spanish > 3 * english, text


def test_offline_note_names_its_topic_with_no_fallback_and_no_warning(client, new_user, workers):
    import json

    _, headers = user_with_voice(client, new_user)
    jobs = [perform_ok(client, headers, routine="gratitude", topic="my sister's wedding")]
    assert client.put("/user/settings", headers=headers, json={"language": "spanish"}).status_code == 200
    jobs.append(perform_ok(client, headers, routine="gratitude", topic="la boda de mi hermana"))
    for job, topic in zip(jobs, ("my sister's wedding", "la boda de mi hermana")):
        result = job["result"]
        assert topic in result["text"], result["text"]
        assert result["fell_back"] is False and result["text_provider"] == "local"
    complaints = []
    for line in workers.log("all").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("job_id") in {j["job_id"] for j in jobs} and entry.get("level") in ("warning", "error"):
            complaints.append(entry)
    assert complaints == []


@pytest.mark.parametrize("body, fragment", [
    ({"routine_type": "no_such_routine", "topic": "x"}, "routine"),
    ({"routine_type": "gratitude", "topic": "   "}, "topic"),
    ({"routine_type": "gratitude", "topic": "x" * 201}, "200"),
    ({"routine_type": "gratitude", "topic": "hello\x00world"}, "control"),
    ({"routine_type": "gratitude", "topic": "ok", "extra": 1}, "extra"),
    ({"routine_type": "gratitude"}, "topic"),
])
def test_bad_perform_requests_are_422(client, new_user, body, fragment):
    _, headers = new_user()
    resp = client.post("/perform", headers=headers, json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"] == "VALIDATION_ERROR"
    assert fragment in resp.json()["message"].lower()


def test_perform_without_voice_is_409_with_action(client, new_user):
    _, headers = new_user()
    resp = perform(client, headers)
    assert resp.status_code == 409
    body = resp.json()
    assert body["error"] == "VOICE_CLONE_REQUIRED" and "/user/voice" in body["action"]


def test_quota_exhausted_is_402(client, new_user, workers, db):
    user, headers = user_with_voice(client, new_user)
    db["users"].update_one({"_id": ObjectId(user["id"])}, {"$set": {"charCount": 4000}})
    resp = perform(client, headers)
    assert resp.status_code == 402 and resp.json()["error"] == "QUOTA_EXCEEDED"


def test_too_little_left_for_the_shortest_note_is_402_at_submit(client, new_user, workers, db, settings):
    """One character left cannot pay for any note: refused before a job (and a paid LLM call)."""
    from shared.perform.routines import get_routine
    from shared.perform.service import note_costs

    user, headers = user_with_voice(client, new_user)
    shortest, _ = note_costs(get_routine("morning_motivation"), "english", settings.voice_model_id)
    for left in (1, shortest - 1):
        db["users"].update_one({"_id": ObjectId(user["id"])}, {"$set": {"charCount": 4000 - left}})
        resp = perform(client, headers)
        assert resp.status_code == 402, resp.text
        body = resp.json()
        assert body["error"] == "QUOTA_EXCEEDED" and body["action"]
        assert body["details"]["needed"] == shortest and body["details"]["quota"]["remaining"] == left
    assert db["jobs"].count_documents({"user_id": user["id"], "kind": "perform"}) == 0


def test_a_nearly_used_quota_holds_what_is_left_and_the_note_fits_it(client, new_user, workers, db, settings):
    from shared.perform.routines import get_routine
    from shared.perform.service import note_costs

    user, headers = user_with_voice(client, new_user)
    shortest, longest = note_costs(get_routine("morning_motivation"), "english", settings.voice_model_id)
    left = shortest + 60
    assert left < longest  # less than a full note's hold
    db["users"].update_one({"_id": ObjectId(user["id"])}, {"$set": {"charCount": 4000 - left}})
    job = perform_ok(client, headers)
    effective = job["result"]["chars"]["effective"]
    assert effective <= left
    charge = db["charges"].find_one({"_id": job["job_id"]})
    assert charge["held"] == left and charge["effective"] == effective and charge["state"] == "charged"
    me = client.get("/user/me", headers=headers).json()
    assert me["charCount"] == 4000 - left + effective <= 4000


def test_idempotency_key(client, new_user, workers, db):
    user, headers = user_with_voice(client, new_user)
    first = perform(client, headers, key="note-1")
    again = perform(client, headers, key="note-1")
    assert first.status_code == again.status_code == 202
    assert first.json()["job_id"] == again.json()["job_id"] and again.json()["replayed"] is True
    other = perform(client, headers, key="note-1", topic="something else entirely")
    assert other.status_code == 422 and other.json()["error"] == "VALIDATION_ERROR"
    wait_job(client, first.json()["job_id"], headers)
    assert db["jobs"].count_documents({"user_id": user["id"], "kind": "perform"}) == 1
    assert client.get("/recordings", headers=headers).json()["total"] == 1


def test_concurrent_performs_never_pass_the_limit_and_sum_exactly(client, new_user, workers, db):
    user, headers = user_with_voice(client, new_user)
    limit = 2500  # room for a few notes, not for twenty
    db["users"].update_one({"_id": ObjectId(user["id"])}, {"$set": {"monthlyLimit": limit}})
    topics = [f"topic number {i}" for i in range(20)]
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda t: perform(client, headers, topic=t), topics))
    accepted = [r.json()["job_id"] for r in responses if r.status_code == 202]
    assert all(r.status_code in (202, 402) for r in responses)
    jobs = [wait_job(client, job_id, headers, timeout_s=300) for job_id in accepted]
    ok = [j for j in jobs if j["state"] == "succeeded"]
    failed = [j for j in jobs if j["state"] == "failed"]
    assert ok, "some notes must fit"
    assert failed, "twenty notes cannot fit in the limit"
    assert all(j["error"]["error"] == "QUOTA_EXCEEDED" for j in failed)
    me = client.get("/user/me", headers=headers).json()
    assert me["charCount"] <= limit
    assert me["charCount"] == sum(j["result"]["chars"]["effective"] for j in ok)
    assert client.get("/recordings", headers=headers, params={"limit": 100}).json()["total"] == len(ok)


def test_task_delivered_twice_charges_once_and_stores_one_recording(client, new_user, workers, db, settings):
    from shared.jobs.celery_app import producer_for

    user, headers = user_with_voice(client, new_user)
    job_id = perform_ok(client, headers)["job_id"]
    charged = client.get("/user/me", headers=headers).json()["charCount"]
    producer_for(settings.redis_url).send_task("perform.run", args=[job_id], queue="perform")
    producer_for(settings.redis_url).send_task("perform.run", args=[job_id], queue="perform")
    time.sleep(3)
    assert client.get("/user/me", headers=headers).json()["charCount"] == charged
    assert db["recordings"].count_documents({"job_id": job_id}) == 1


def test_perform_body_run_twice_mid_flight_is_one_effect(client, new_user, workers, db, settings, rds):
    """Simulate a redelivery of a job whose first run got through storing but never marked
    the job done: the second run reuses the text, the charge and the recording."""
    from shared.jobs.service import JobStore
    from shared.perform.service import PerformDeps, run_perform
    from shared.perform.text.factory import fallback_text_generator, text_generator
    from shared.providers.factory import voice_provider

    user, headers = user_with_voice(client, new_user)
    store = JobStore(db, rds, broker_url="redis://127.0.0.1:1/0")  # never delivered to a worker
    view, _ = store.create(kind="perform", user_id=user["id"],
                           payload={"routine_type": "gratitude", "topic": "my sister's wedding"})
    from tests.conftest import pool_for

    deps = PerformDeps(db=db, provider=voice_provider(settings, db), generator=text_generator(settings),
                       fallback=fallback_text_generator(), settings=settings, pool=pool_for(settings, db))
    first = run_perform(db["jobs"].find_one({"_id": view.job_id}), deps, lambda *_: None)
    second = run_perform(db["jobs"].find_one({"_id": view.job_id}), deps, lambda *_: None)
    assert first["recording_id"] == second["recording_id"]
    assert first["text"] == second["text"]
    me = client.get("/user/me", headers=headers).json()
    assert me["charCount"] == first["chars"]["effective"]
    assert db["recordings"].count_documents({"user_id": user["id"]}) == 1


def test_a_redelivery_after_the_month_rolled_over_is_charged_in_one_month_only(client, new_user, workers, db,
                                                                               settings, rds):
    """The first run held characters in the old month and died; the message comes back after
    the month rolled over: the note is finished without charging the new month."""
    from shared.jobs.service import JobStore
    from shared.perform.service import PerformDeps, run_perform
    from shared.perform.text.factory import fallback_text_generator, text_generator
    from shared.providers.factory import voice_provider
    from shared.quota.service import reserve
    from tests.conftest import pool_for

    user, headers = user_with_voice(client, new_user)
    oid = ObjectId(user["id"])
    store = JobStore(db, rds, broker_url="redis://127.0.0.1:1/0")  # never delivered to a worker
    view, _ = store.create(kind="perform", user_id=user["id"],
                           payload={"routine_type": "gratitude", "topic": "my sister's wedding"})
    held = reserve(db, db["users"].find_one({"_id": oid}), view.job_id, longest=700, shortest=200,
                   model="local-espeak", provider="local")
    # ... then the month ended: the run's charge is last month's, and the user's counter rolled
    db["charges"].update_one({"_id": view.job_id}, {"$set": {"period": "2000-01"}})
    db["users"].update_one({"_id": oid}, {"$set": {"quota_period": "2000-01"}})
    deps = PerformDeps(db=db, provider=voice_provider(settings, db), generator=text_generator(settings),
                       fallback=fallback_text_generator(), settings=settings, pool=pool_for(settings, db))
    result = run_perform(db["jobs"].find_one({"_id": view.job_id}), deps, lambda *_: None)
    assert result["recording_id"] and held.held == 700
    me = client.get("/user/me", headers=headers).json()
    assert me["charCount"] == 0 and me["quotaPeriod"] != "2000-01"
    assert db["charges"].find_one({"_id": view.job_id})["period"] == "2000-01"


def test_evicted_voice_is_rewarmed_transparently(client, new_user, workers, db):
    from shared.providers.voice.local import LocalVoiceProvider

    user, headers = user_with_voice(client, new_user)
    meta = client.get("/user/voice/meta", headers=headers).json()
    LocalVoiceProvider(db).delete_voice(meta["voice_clone_id"])  # gone behind our back
    job = perform_ok(client, headers)
    assert job["result"]["rewarmed"] is True
    assert job["result"]["voice_id"] != meta["voice_clone_id"]
    after = client.get("/user/voice/meta", headers=headers).json()
    assert after["state"] == "ready" and after["voice_clone_id"] == job["result"]["voice_id"]
    assert db["voices"].find_one({"voice_id": meta["voice_clone_id"]})["state"] == "missing"


def test_recordings_pagination_range_delete_and_ownership(client, new_user, workers):
    _, headers = user_with_voice(client, new_user, voice_note_name="Morning note",
                                 voice_note_date="2026-11-20")
    ids = [perform_ok(client, headers, topic=f"day {i}")["result"]["recording_id"] for i in range(3)]
    page1 = client.get("/recordings", headers=headers, params={"limit": 2}).json()
    assert [i["id"] for i in page1["items"]] == ids[::-1][:2] and page1["total"] == 3
    assert page1["items"][0]["title"] == "Morning note" and page1["items"][0]["date"] == "2026-11-20"
    page2 = client.get("/recordings", headers=headers, params={"limit": 2, "cursor": page1["next_cursor"]}).json()
    assert [i["id"] for i in page2["items"]] == [ids[0]] and page2["next_cursor"] is None
    bad = client.get("/recordings", headers=headers, params={"cursor": "garbage"})
    assert bad.status_code == 422

    url = f"/recordings/{ids[0]}/audio"
    full = client.get(url, headers=headers).content
    part = client.get(url, headers={**headers, "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == full[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(full)}"
    tail = client.get(url, headers={**headers, "Range": "bytes=-50"})
    assert tail.status_code == 206 and tail.content == full[-50:]
    beyond = client.get(url, headers={**headers, "Range": f"bytes={len(full) + 10}-"})
    assert beyond.status_code == 416

    _, stranger = new_user()
    for method, path in (("GET", f"/recordings/{ids[0]}"), ("GET", url), ("DELETE", f"/recordings/{ids[0]}")):
        resp = client.request(method, path, headers=stranger)
        assert resp.status_code == 404 and resp.json()["error"] == "NOT_FOUND"
    assert client.get("/recordings/not-an-id", headers=headers).status_code == 404

    assert client.delete(f"/recordings/{ids[0]}", headers=headers).status_code == 204
    assert client.get(url, headers=headers).status_code == 404
    assert client.get("/recordings", headers=headers).json()["total"] == 2


def test_a_long_note_goes_to_gridfs_and_a_missing_blob_answers_404(client, new_user, db):
    """A note above the inline limit is stored in GridFS; if its file is gone (deleted under a
    download, or lost), the audio answers 404 with the action to take, never a 500."""
    import uuid

    from shared import storage
    from shared.recordings import service as recordings

    user, headers = new_user()
    mp3 = bytes(range(256)) * 64
    rec = recordings.store(db, job_id=uuid.uuid4().hex, user_id=user["id"], mp3=mp3,
                           meta={"title": "Long note"}, inline_max_bytes=1024)
    url = f"/recordings/{rec['_id']}/audio"
    assert rec["file_id"] and client.get(url, headers=headers).content == mp3
    part = client.get(url, headers={**headers, "Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == mp3[1000:2000]
    storage.delete(db, storage.RECORDINGS, rec["file_id"])
    gone = client.get(url, headers=headers)
    assert gone.status_code == 404, gone.text
    assert gone.json()["error"] == "NOT_FOUND" and gone.json()["action"]
