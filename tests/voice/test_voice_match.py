"""Speaker checks through the real clone job: one person's sample clones, two people's is
refused, and so is music."""

from __future__ import annotations

from tests import samples
from tests.conftest import wait_job
from tests.voice.test_clone import clone_ok, local_voice_ids, upload


def test_one_speaker_clones_with_its_consistency_shown(client, new_user, workers):
    _, headers = new_user()
    quality = clone_ok(client, headers, samples.original())["result"]["quality"]
    assert 80 <= quality["speaker_consistency"] <= 100
    assert quality["speaker_split_cosine"] > 0.85
    meta = client.get("/user/voice/meta", headers=headers).json()
    assert meta["sample"]["quality"]["speaker_consistency"] == quality["speaker_consistency"]


def test_the_espeak_stand_in_honestly_scores_far_from_a_human(client, new_user, workers):
    """The offline stand-in imitates pitch and pace only: it must not pass for a clone."""
    _, headers = new_user()
    result = clone_ok(client, headers, samples.original())["result"]
    match = result["voice_match"]
    assert match["band"] == "far" and match["score"] < 35, match
    assert match["cosine"] < 0.72
    meta = client.get("/user/voice/meta", headers=headers).json()
    assert meta["voice_match"] == match
    # under the configured floor (35 in the tests): the voice is flagged with what to do
    flag = meta["voice_flag"]
    assert flag["code"] == "VOICE_MATCH_LOW" and f"{match['score']}/100" in flag["message"]
    assert flag["action"] == "Record a new sample in a quiet room."
    # the same sample again keeps the voice, and with it the score
    again = clone_ok(client, headers, samples.original())["result"]
    assert again["action"] == "update_skipped" and again["voice_match"] == match


def test_two_real_speakers_are_refused_with_reason_and_action(client, new_user, workers, db):
    user, headers = new_user()
    voices_before = local_voice_ids(db)
    resp = upload(client, headers, samples.two_speakers())
    assert resp.status_code == 202, resp.text
    job = wait_job(client, resp.json()["job_id"], headers, timeout_s=180)
    assert job["state"] == "failed", job
    err = job["error"]
    assert err["error"] == "SAMPLE_MULTIPLE_SPEAKERS"
    assert "more than one voice" in err["message"] and "different person" in err["message"]
    assert "alone" in err["action"] and "quiet room" in err["action"]
    # the job refused before the provider: no voice made, the account back to no voice
    assert local_voice_ids(db) == voices_before
    meta = client.get("/user/voice/meta", headers=headers).json()
    assert meta["state"] == "failed" and meta["last_error"]["error"] == "SAMPLE_MULTIPLE_SPEAKERS"
    assert db["samples.files"].count_documents({"metadata.user_id": user["id"]}) == 0


def test_music_is_refused_as_not_speech_with_reason_and_action(client, new_user, workers, db):
    _, headers = new_user()
    voices_before = local_voice_ids(db)
    resp = upload(client, headers, samples.music())
    assert resp.status_code == 202, resp.text
    job = wait_job(client, resp.json()["job_id"], headers, timeout_s=180)
    assert job["state"] == "failed", job
    err = job["error"]
    assert err["error"] == "SAMPLE_NOT_SPEECH"
    assert "does not sound mostly like speech" in err["message"] and "syllables a second" in err["message"]
    assert "reading aloud" in err["action"] and "no music" in err["action"]
    assert local_voice_ids(db) == voices_before
    meta = client.get("/user/voice/meta", headers=headers).json()
    assert meta["state"] == "failed" and meta["last_error"]["error"] == "SAMPLE_NOT_SPEECH"
    assert meta["last_error"]["action"] == err["action"]


def test_pool_status_shows_the_distribution_of_match_scores(client, new_user, workers):
    _, headers = new_user()
    clone_ok(client, headers, samples.original())
    _, admin_headers = new_user(role="admin")
    status = client.get("/admin/voice-pool/status", headers=admin_headers).json()
    dist = status["voice_match"]
    assert dist["by_band"]["far"] >= 1 and dist["scored"] >= 1
    assert set(dist["by_band"]) == {"close", "fair", "far", "unscored"}
    assert 0 <= dist["quartiles"]["q1"] <= dist["quartiles"]["median"] <= dist["quartiles"]["q3"] <= 100


def test_match_flag_only_under_the_floor():
    from shared.voices.clone import voice_match_flag

    far = {"score": 12, "band": "far", "cosine": 0.64}
    assert voice_match_flag(None, 35) is None
    assert voice_match_flag(far, 0) is None  # floor 0: never flagged
    assert voice_match_flag(far, 12) is None
    assert voice_match_flag(far, 13)["action"] == "Record a new sample in a quiet room."


def test_every_note_is_scored_and_the_score_kept_on_its_recording(client, new_user, workers, db):
    from bson import ObjectId

    from tests.perform.helpers import perform_ok, user_with_voice

    user, headers = user_with_voice(client, new_user)
    user_doc = db["users"].find_one({"_id": ObjectId(user["id"])})
    assert len(bytes(user_doc["sample"]["speaker_embedding"])) == 256 * 4  # float32, kept with the sample
    result = perform_ok(client, headers)["result"]
    match = result["voice_match"]
    # the note is the espeak stand-in speaking: as far from the human sample as the phrase was
    assert match["band"] == "far" and 0 <= match["score"] < 35 and match["cosine"] < 0.72
    recording = client.get(f"/recordings/{result['recording_id']}", headers=headers).json()
    assert recording["voice_match"] == match
    listing = client.get("/recordings", headers=headers).json()["items"]
    assert listing[0]["voice_match"] == match
