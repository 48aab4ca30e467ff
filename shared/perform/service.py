"""Perform: write a voice note, charge it once, speak it in the user's voice, mix, store.

API side (`submit_perform`) validates and checks the cheap preconditions (a voice or a stored
sample, some quota left), then creates the job, honouring an Idempotency-Key.
Worker side (`run_perform`) runs the stages composing → charging → acquiring_voice →
synthesizing → mixing → storing. It is idempotent per job: the composed text is kept on the
job, the charge and the recording are keyed by the job id. A failure after charging refunds.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from pymongo.database import Database

from shared import metrics
from shared.audio.mix import render_note
from shared.config import Settings
from shared.errors import ProviderUnavailable, VoiceCloneRequired
from shared.jobs.service import JobStore, now
from shared.perform.compose import compose_voice_note
from shared.perform.prompt import build_voice_note_prompt, normalize_topic
from shared.perform.routines import get_routine
from shared.perform.synthesis import split_for_synthesis, voice_settings_for
from shared.providers.errors import VoiceNotFoundError
from shared.providers.text.base import TextGenerator
from shared.providers.voice.base import VoiceProvider
from shared.quota import service as quota
from shared.quota.costs import effective_chars
from shared.recordings import service as recordings
from shared.stores import STORE_DOWN_ERRORS
from shared.users.service import read_settings
from shared.pool.service import VoicePool

log = logging.getLogger(__name__)
Progress = Callable[[str, float | None], None]


# ------------------------------------------------------------------ API side


def request_hash(routine_type: str, topic: str) -> str:
    canonical = json.dumps({"routine_type": routine_type, "topic": topic}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def submit_perform(db: Database, jobs: JobStore, user: dict[str, Any], routine_type: str, topic: str,
                   idempotency_key: str | None) -> tuple[Any, bool, quota.QuotaState]:
    routine = get_routine(routine_type)
    clean_topic = normalize_topic(topic)
    payload = {"routine_type": routine.type, "topic": clean_topic}
    key_hash = request_hash(routine.type, clean_topic)
    replay = idempotency_key is not None and db["jobs"].find_one(
        {"user_id": str(user["_id"]), "kind": "perform", "idempotency_key": idempotency_key}, {"_id": 1})
    if replay:
        # A replay answers with the job it started even if, since then, the quota ran out:
        # the preconditions held when the request was accepted.
        state = quota.state(db, user["_id"], user)
    else:
        _require_voice(user)
        # `user` was read by the auth dependency in this request: no second read of its quota
        state = quota.require_some_left(db, user["_id"], user)
    view, created = jobs.submit(kind="perform", user_id=str(user["_id"]), payload=payload,
                                idempotency_key=idempotency_key, request_hash=key_hash)
    return view, created, state


def _require_voice(user: dict[str, Any]) -> None:
    has_voice = bool(user.get("voice_clone_id")) and user.get("voice_state") == "ready"
    has_sample = bool((user.get("sample") or {}).get("normalized_id"))
    if not (has_voice or has_sample):
        raise VoiceCloneRequired("Record your voice sample before asking for a voice note.",
                                 action="Upload a 30 s - 3 min recording with POST /user/voice, then try again.")


# ------------------------------------------------------------------ worker side


@dataclass
class PerformDeps:
    db: Database
    jobs: JobStore
    provider: VoiceProvider
    generator: TextGenerator
    fallback: TextGenerator
    settings: Settings
    pool: VoicePool


def run_perform(job: dict[str, Any], deps: PerformDeps, progress: Progress) -> dict[str, Any]:
    user_oid = ObjectId(job["user_id"])
    try:
        return _perform(job, deps, progress)
    except STORE_DOWN_ERRORS:
        raise  # the task is retried as a whole; the charge (keyed by job) carries over
    except Exception:
        if quota.refund(deps.db, user_oid, job["_id"]):
            log.info("perform failed after charging; refunded")
        raise


def _perform(job: dict[str, Any], deps: PerformDeps, progress: Progress) -> dict[str, Any]:
    db, provider, settings = deps.db, deps.provider, deps.settings
    user = db["users"].find_one({"_id": ObjectId(job["user_id"])})
    if user is None:
        raise VoiceCloneRequired("The account no longer exists.")
    prefs = read_settings(user)
    routine = get_routine(job["payload"]["routine_type"])
    topic = job["payload"]["topic"]

    progress("composing", 0.1)
    note = _composed_note(job, deps, routine, topic, prefs.language)
    text = note["text"]

    progress("charging", 0.3)
    raw = len(text)
    effective = effective_chars(raw, provider.model_id)
    charged = quota.charge(db, user["_id"], job["_id"], raw=raw, effective=effective, model=provider.model_id,
                           provider=provider.name)

    progress("acquiring_voice", 0.4)
    chunks = split_for_synthesis(text, settings.synthesis_chunk_chars)
    voice_settings = voice_settings_for(prefs, routine)
    pool = deps.pool
    lease = pool.acquire(user, job["_id"])
    try:
        progress("synthesizing", 0.5)
        try:
            audio, provider_cost = _speak(provider, chunks, lease.voice_id, voice_settings)
        except VoiceNotFoundError:
            # Evicted or deleted behind our back: re-create from the stored sample, once.
            pool.release(lease)
            pool.voice_lost(lease.voice_id)
            progress("acquiring_voice", 0.55)
            lease = pool.acquire(user, job["_id"] + ":retry")
            progress("synthesizing", 0.6)
            audio, provider_cost = _speak(provider, chunks, lease.voice_id, voice_settings)
    finally:
        pool.release(lease)
    voice_id, rewarmed = lease.voice_id, lease.rewarmed
    quota.record_provider_cost(db, job["_id"], provider_cost)

    progress("mixing", 0.8)
    try:
        rendered = render_note(audio, add_background=prefs.add_background_sound,
                               background_volume=prefs.background_volume,
                               fan_loop_path=settings.fan_loop_path or None,
                               target_lufs=settings.note_target_lufs, true_peak_dbtp=settings.note_true_peak_dbtp)
    except ValueError as exc:  # silent or empty audio from the provider
        raise ProviderUnavailable(f"The voice provider returned unusable audio ({exc}).") from exc

    progress("storing", 0.9)
    recording = recordings.store(db, job_id=job["_id"], user_id=job["user_id"], mp3=rendered.mp3, meta={
        "title": prefs.voice_note_name or routine.title(prefs.language),
        "date": (prefs.voice_note_date.isoformat() if prefs.voice_note_date else now().date().isoformat()),
        "routine_type": routine.type, "topic": topic, "text": text, "language": prefs.language,
        "duration_s": round(rendered.duration_s, 3), "loudness_lufs": round(rendered.loudness_lufs, 2),
        "voice_id": voice_id, "chars_raw": raw, "chars_effective": effective, "provider_cost": provider_cost,
        "model": provider.model_id, "provider": provider.name, "text_provider": note["provider"],
        "text_model": note["model"]})
    db["users"].update_one({"_id": user["_id"]}, {"$set": {"last_perform_at": now()}})
    # counted once the note is delivered, so it matches what the quota keeps charged
    metrics.chars_generated(raw, effective)
    return {
        "recording_id": str(recording["_id"]),
        "audio_url": f"/recordings/{recording['_id']}/audio",
        "duration_s": recording["duration_s"],
        "title": recording["title"],
        "text": text,
        "chars": {"raw": raw, "effective": effective, "provider_cost": provider_cost},
        "charCount": charged.charCount,
        "monthlyLimit": charged.monthlyLimit,
        "charsUsedRaw": charged.charsUsedRaw,
        "charsUsedEffective": charged.charCount,
        "voice_id": voice_id,
        "rewarmed": rewarmed,
        "model": provider.model_id,
        "text_provider": note["provider"],
        "fell_back": note["fell_back"],
    }


def _composed_note(job: dict[str, Any], deps: PerformDeps, routine, topic: str, language: str) -> dict[str, Any]:
    """Compose once per job: a redelivered task speaks (and charges) the same text."""
    saved = (job.get("work") or {}).get("note")
    if saved:
        return saved
    seed = int(job["_id"][:8], 16)
    prompt = build_voice_note_prompt(routine, topic, language, seed=seed)
    composed = compose_voice_note(deps.generator, deps.fallback, prompt)
    note = {"text": composed.text, "provider": composed.provider, "model": composed.model,
            "fell_back": composed.fell_back, "problems": composed.problems[:10]}
    # First writer wins: two runs of one job at once (a duplicate delivery) must speak, charge
    # and store the same text, so the loser adopts the note already saved.
    # (update_one, not find_one_and_update: the embedded SecantusDB scans the whole collection
    # for a findAndModify; see bench/README.md)
    won = deps.db["jobs"].update_one(
        {"_id": job["_id"], "work.note": {"$exists": False}}, {"$set": {"work.note": note}}).matched_count == 1
    if not won:
        return (deps.db["jobs"].find_one({"_id": job["_id"]}, {"work": 1}) or {}).get("work", {}).get("note") or note
    return note


def _speak(provider: VoiceProvider, chunks: list[str], voice_id: str, voice_settings) -> tuple[list[bytes], int | None]:
    audio: list[bytes] = []
    costs: list[int] = []
    for chunk in chunks:
        result = provider.synthesize(chunk, voice_id, voice_settings)
        audio.append(result.audio)
        if result.character_cost is not None:
            costs.append(result.character_cost)
    return audio, (sum(costs) if costs else None)

