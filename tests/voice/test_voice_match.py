"""Speaker checks through the real clone job: one person's sample clones, two people's is refused."""

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
