"""Voice cloning: accept an upload (API side) and turn it into a voice (worker side).

API side (`accept_upload`): reserve the user's single clone slot atomically (409 when a clone
is already in progress), store the original in GridFS, create and enqueue the job. Any failure
undoes the reservation and the stored file, so a refused upload leaves nothing behind.

Worker side (`run_clone`): clean the sample, then create the voice at the provider (through a
`creating` record, so a redelivered task adopts instead of duplicating), then switch the user
to it. An update creates the new voice first and schedules deletion of the previous one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from bson import Binary, ObjectId
from pymongo.database import Database

from shared import metrics, ratelimit, storage
from shared.audio.clean import SampleRules, clean_sample, probe_upload
from shared.audio.codec import AudioDecodeError, decode_to_mono
from shared.audio.speaker.checks import WINDOWS_PER_S as NOTE_WINDOWS_PER_S
from shared.audio.speaker.encoder import SAMPLE_RATE as SPEAKER_SR
from shared.audio.speaker.match import CALIBRATION_PHRASE, score_speech
from shared.clock import now
from shared.config import Settings
from shared.errors import AppError, CloneInProgress, SampleTooLarge
from shared.jobs.service import JobStore, new_job_id
from shared.pool import records
from shared.pool.service import VoicePool
from shared.providers.voice.base import VoiceProvider, VoiceSettings
from shared.stores import redis_client
from shared.users import repository as users
from shared.users.account import Account
from shared.voices.schemas import VoiceMeta

log = logging.getLogger(__name__)

#: a clone reservation older than this is considered abandoned (crashed API or lost job)
STALE_CLONE_AFTER = timedelta(minutes=20)
#: grace before a replaced voice is deleted, so in-flight syntheses with it can finish
REPLACED_VOICE_GRACE = timedelta(minutes=5)
Progress = Callable[[str, float | None], None]


def sample_rules(settings: Settings) -> SampleRules:
    return SampleRules(
        min_total_s=settings.sample_min_seconds,
        min_speech_s=settings.sample_min_speech_seconds,
        max_total_s=settings.sample_max_seconds,
        target_lufs=settings.sample_target_lufs,
        true_peak_dbtp=settings.sample_true_peak_dbtp,
    )


# ------------------------------------------------------------------ API side


def accept_upload(db: Database, jobs: JobStore, settings: Settings, user: Account, data: bytes,
                  filename: str, content_type: str | None) -> Any:
    """Validate cheaply, store the original, start the clone job. Returns the job view."""
    if len(data) > settings.sample_max_bytes:
        raise SampleTooLarge(f"The file is {len(data) / 1e6:.1f} MB; the limit is "
                             f"{settings.sample_max_bytes / 1e6:.0f} MB.")
    info = probe_upload(data)  # SampleUnsupported for anything that is not audio, whatever its name
    user_id = user.id
    # The reservation is the job id from the start: the worker releases it by that id, however
    # soon it finishes (were it swapped in after the enqueue, a fast clone would release
    # nothing and leave the account "in progress").
    job_id = new_job_id()
    if not users.reserve_clone(db, user.oid, job_id, STALE_CLONE_AFTER):
        raise CloneInProgress("A voice sample is already being processed for this account.")
    original_id = None
    try:
        original_id = storage.put(db, storage.SAMPLES, data, filename or "sample", {
            "user_id": user_id, "kind": "original", "content_type": content_type,
            "format": info.format_name, "codec": info.codec_name, "size": len(data)})
        view, _ = jobs.submit(kind="clone", user_id=user_id, job_id=job_id, payload={
            "original_id": str(original_id), "filename": filename, "size": len(data),
            "format": info.format_name, "codec": info.codec_name, "declared_duration_s": info.duration_s})
    except BaseException:
        storage.delete(db, storage.SAMPLES, original_id)
        users.release_clone(db, user.oid, job_id)
        raise
    return view


# ------------------------------------------------------------------ worker side


@dataclass
class CloneDeps:
    db: Database
    provider: VoiceProvider
    settings: Settings
    pool: VoicePool


def run_clone(job: dict[str, Any], deps: CloneDeps, progress: Progress) -> dict[str, Any]:
    """The clone job body. Idempotent per job: running it twice creates one voice."""
    db, user_oid = deps.db, ObjectId(job["user_id"])
    try:
        result = _clone(job, deps, progress)
    except AppError as exc:
        # the failure itself is recorded by clone_job_failed once the job is marked failed
        if exc.code.startswith("SAMPLE_"):  # the sample's fault; provider or store failures are not rejections
            metrics.clone_rejected(exc.code)
        raise
    # Marked before the slot is released, so no upload slips in between: the API refuses
    # new samples for UPLOAD_COOLDOWN_S from this mark (shared/ratelimit.py).
    ratelimit.record_clone_success(redis_client(deps.settings), job["user_id"])
    users.release_clone(db, user_oid, job["_id"])
    return result


def _clone(job: dict[str, Any], deps: CloneDeps, progress: Progress) -> dict[str, Any]:
    db = deps.db
    user_id = job["user_id"]
    payload = job["payload"]
    stage_progress = {"decoding": 0.1, "normalizing": 0.3, "checking": 0.5}
    data = storage.get(db, storage.SAMPLES, payload["original_id"])
    cleaned = clean_sample(data, sample_rules(deps.settings), on_stage=lambda s: progress(s, stage_progress[s]))
    quality = cleaned.report.to_dict()
    user = users.by_id(db, ObjectId(user_id))

    current = records.by_voice_id(db, user["voice_clone_id"]) if user.get("voice_clone_id") else None
    already_done = db["voices"].find_one({"job_id": job["_id"], "state": "ready"})
    if (already_done is None and current is not None and current["state"] == "ready"
            and current["sample_sha256"] == cleaned.sha256):
        # The same clean sample again: the voice we have is already this voice.
        _save_sample(db, user, job, cleaned, quality, action="update_skipped")
        storage.delete(db, storage.SAMPLES, payload["original_id"])
        return {"action": "update_skipped", "voice_clone_id": user["voice_clone_id"], "quality": quality,
                "sample_sha256": cleaned.sha256, "voice_match": user.get("voice_match")}

    progress("uploading", 0.6)
    record = deps.pool.create_voice(user_id, cleaned.sha256, cleaned.mp3, job_key=job["_id"])

    progress("saving", 0.9)
    voice_match = score_new_voice(deps.provider, record["voice_id"], cleaned.speaker_embedding)
    if voice_match is not None:
        metrics.voice_match_scored(voice_match["score"])
    flag = voice_match_flag(voice_match, deps.settings.voice_match_floor)
    previous_id = user.get("voice_clone_id") if user.get("voice_clone_id") != record["voice_id"] else \
        user.get("voice_clone_previous_id")
    action = "updated" if previous_id and current is not None and current["state"] in ("ready", "evicting") \
        else "created"
    _save_sample(db, user, job, cleaned, quality, action=action, voice_record=record, previous_id=previous_id,
                 voice_match=voice_match, voice_flag=flag)
    if current is not None and current["_id"] != record["_id"]:
        records.schedule_deletion(db, current["_id"], REPLACED_VOICE_GRACE, reason="replaced")
        deps.pool.forget(current["voice_id"])
    return {"action": action, "voice_clone_id": record["voice_id"], "quality": quality,
            "sample_sha256": cleaned.sha256, "voice_match": voice_match}


def score_new_voice(provider: VoiceProvider, voice_id: str, owner_embedding) -> dict[str, Any] | None:
    """The new voice speaks the calibration phrase; how much that sounds like the owner's
    sample (shared.audio.speaker.match), as {score, band, cosine}. None when the phrase could
    not be had: the clone itself succeeded, and a missing score must not undo it."""
    try:
        synthesis = provider.synthesize(CALIBRATION_PHRASE, voice_id, VoiceSettings())
        samples = decode_to_mono(synthesis.audio, SPEAKER_SR)
    except (AppError, AudioDecodeError) as exc:  # provider errors and undecodable audio alike
        log.warning("voice match not scored: the calibration phrase failed",
                    extra={"voice_id": voice_id, "error": getattr(exc, "code", type(exc).__name__)})
        return None
    match = score_speech(samples, SPEAKER_SR, owner_embedding)
    return match.to_dict() if match else None


def voice_match_flag(voice_match: dict[str, Any] | None, floor: int) -> dict[str, Any] | None:
    """The flag a voice carries when its match score is under the configured floor, else None."""
    if voice_match is None or voice_match["score"] >= floor:
        return None
    return {"code": "VOICE_MATCH_LOW",
            "message": f"Your voice scores {voice_match['score']}/100 for sounding like your sample; "
                       f"under {floor} a clone usually does not sound like you.",
            "action": "Record a new sample in a quiet room."}


def sample_embedding(user: dict[str, Any]) -> np.ndarray | None:
    """The speaker embedding of the user's current sample, or None (cloned before voice match)."""
    raw = (user.get("sample") or {}).get("speaker_embedding")
    return np.frombuffer(bytes(raw), dtype="<f4") if raw else None


#: a note's voice is judged on its first 16 s of speech: ten edge-to-edge windows. On the fixtures'
#: real speech the cosine moves by at most 0.005 against the whole note (about 1 point of the
#: score; same speaker 29 s: 0.9727 -> 0.9682, another speaker: 0.5622 -> 0.5633), while a 30 s
#: note costs 0.09 instead of 0.15 CPU-s (bench/README.md, "The hot path")
NOTE_SCORED_SPEECH_S = 16.0


def score_note(voice: np.ndarray, sample_rate: int, user: dict[str, Any]) -> dict[str, Any] | None:
    """How much a note's voice sounds like the user's sample, as {score, band, cosine}; None
    when there is no sample embedding or no speech."""
    owner = sample_embedding(user)
    if owner is None:
        return None
    match = score_speech(voice, sample_rate, owner, windows_per_s=NOTE_WINDOWS_PER_S, max_speech_s=NOTE_SCORED_SPEECH_S)
    return match.to_dict() if match else None


def _save_sample(db: Database, user: dict[str, Any], job: dict[str, Any], cleaned, quality: dict,
                 *, action: str, voice_record: dict | None = None, previous_id: str | None = None,
                 voice_match: dict[str, Any] | None = None, voice_flag: dict[str, Any] | None = None) -> None:
    payload = job["payload"]
    old_sample = user.get("sample") or {}
    normalized_id = None
    if old_sample.get("job_id") == job["_id"]:  # a redelivered run already saved this sample
        normalized_id = old_sample.get("normalized_id")
    if normalized_id is None:
        normalized_id = storage.put(db, storage.SAMPLES, cleaned.mp3, "normalized.mp3", {
            "user_id": job["user_id"], "kind": "normalized", "sha256": cleaned.sha256, "job_id": job["_id"]})
    sample = {"job_id": job["_id"], "original_id": payload["original_id"], "normalized_id": str(normalized_id),
              "sha256": cleaned.sha256, "quality": quality, "format": payload.get("format"),
              "speaker_embedding": Binary(np.asarray(cleaned.speaker_embedding, "<f4").tobytes()),
              "saved_at": now()}
    if action == "update_skipped":
        users.record_clone_skipped(db, user["_id"], job["_id"])
        return
    users.set_cloned_voice(db, user["_id"], job["_id"], action=action, sample=sample,
                           voice_id=voice_record["voice_id"], voice_record_id=voice_record["_id"],
                           previous_id=previous_id, voice_match=voice_match, voice_flag=voice_flag)
    if old_sample.get("job_id") != job["_id"]:
        # the superseded sample files are no longer anyone's
        storage.delete(db, storage.SAMPLES, old_sample.get("original_id"))
        storage.delete(db, storage.SAMPLES, old_sample.get("normalized_id"))


def clone_job_failed(db: Database, job: dict[str, Any], error: dict[str, Any]) -> None:
    """Failure hook of clone jobs (shared.jobs.model.KINDS), whoever failed the job (the task, a
    time limit, the stranded-job sweeper): the user's previous voice stays as it was, the clone
    slot is free again and no stray file is kept."""
    user_oid = ObjectId(job["user_id"])
    user = users.voice_state_of(db, user_oid)
    state = user.get("voice_state", "none") if user else "none"
    users.record_clone_failure(db, user_oid, job["_id"], error, voice_failed=state in ("none", "pending", "failed")
                               and not (user or {}).get("voice_clone_id"))
    storage.delete(db, storage.SAMPLES, job["payload"].get("original_id"))


def voice_meta(user: Account) -> VoiceMeta:
    """What GET /user/voice/meta shows."""
    sample = user.sample
    return VoiceMeta.model_validate({
        "state": "pending" if user.clone_job_id else user.voice_state,
        "voice_clone_id": user.voice_clone_id,
        "voice_clone_previous_id": user.voice_clone_previous_id,
        "sample": {"sha256": sample.sha256, "quality": sample.quality,
                   "format": sample.format, "saved_at": sample.saved_at} if sample else None,
        "clone_job_id": user.clone_job_id,
        "voice_match": user.voice_match,
        "voice_flag": user.voice_flag,
        "last_action": (user.last_clone or {}).get("action"),
        "last_error": (user.last_clone or {}).get("error"),
    })
