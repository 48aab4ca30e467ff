"""Perform: write a voice note, charge it once, speak it in the user's voice, mix, store.

API side (`submit_perform`) validates and checks the cheap preconditions from the user it
already has (a voice or a stored sample; enough quota left for the routine's shortest note),
then creates the job, honouring an Idempotency-Key.
Worker side (`run_perform`) runs the stages reserving → composing → acquiring_voice →
synthesizing → mixing → storing. Characters are held before the writer (a paid call) is asked
for anything, and the note is written within what was held. It is idempotent per job: the
composed text is kept on the job, the charge and the recording are keyed by the job id. A
failure gives back what was held or charged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from pymongo.database import Database

from shared import metrics
from shared.audio.codec import AudioDecodeError
from shared.audio.mix import render_note
from shared.clock import now
from shared.config import Settings
from shared.errors import AppError, ProviderUnavailable, VoiceCloneRequired, VoiceNotFound
from shared.jobs.service import JobStore, save_work
from shared.perform.compose import compose_voice_note
from shared.perform.prompt import build_voice_note_prompt, normalize_topic, note_char_bounds
from shared.perform.routines import Routine, get_routine
from shared.perform.synthesis import split_for_synthesis, voice_settings_for
from shared.perform.text.base import TextGenerator
from shared.pool.service import VoicePool
from shared.providers.voice.base import VoiceProvider
from shared.quota import service as quota
from shared.quota.costs import effective_chars, raw_chars_within
from shared.recordings import service as recordings
from shared.users import repository as users
from shared.users.account import Account, read_settings
from shared.voices.clone import score_note

log = logging.getLogger(__name__)
Progress = Callable[[str, float | None], None]


def note_costs(routine: Routine, language: str, model_id: str) -> tuple[int, int]:
    """Effective characters of the routine's shortest and longest acceptable note."""
    shortest, longest = note_char_bounds(routine, language)
    return effective_chars(shortest, model_id), effective_chars(longest, model_id)


# ------------------------------------------------------------------ API side


def request_hash(routine_type: str, topic: str) -> str:
    canonical = json.dumps({"routine_type": routine_type, "topic": topic}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def submit_perform(jobs: JobStore, settings: Settings, user: Account, routine_type: str, topic: str,
                   idempotency_key: str | None,
                   reread_user: Callable[[], Account] | None = None) -> tuple[Any, bool, quota.QuotaState]:
    """Accept a perform: check its cheap preconditions on `user` and write the job. `user` may
    be a few seconds old (shared/users/recent.py): a refusal is then checked again on
    `reread_user()` before it is answered."""
    routine = get_routine(routine_type)
    clean_topic = normalize_topic(topic)
    payload = {"routine_type": routine.type, "topic": clean_topic}
    key_hash = request_hash(routine.type, clean_topic)
    user_id = user.id
    try:
        try:
            state = _preconditions(settings, user, routine)
        except AppError:
            if reread_user is None:
                raise
            user = reread_user()
            state = _preconditions(settings, user, routine)
    except AppError:
        # A replay answers with the job it started even if, since then, the quota ran out:
        # the preconditions held when the request was accepted.
        replayed = idempotency_key and jobs.replay(user_id=user_id, kind="perform",
                                                   idempotency_key=idempotency_key, request_hash=key_hash)
        if not replayed:
            raise
        return replayed, False, quota.state_of_account(user)
    view, created = jobs.submit(kind="perform", user_id=user_id, payload=payload,
                                idempotency_key=idempotency_key, request_hash=key_hash)
    return view, created, state


def _preconditions(settings: Settings, user: Account, routine: Routine) -> quota.QuotaState:
    _require_voice(user)
    shortest, _ = note_costs(routine, user.settings.language, settings.voice_model_id)
    return quota.require_room_for(user, shortest)


def _require_voice(user: Account) -> None:
    has_voice = bool(user.voice_clone_id) and user.voice_state == "ready"
    has_sample = bool(user.sample and user.sample.normalized_id)
    if not (has_voice or has_sample):
        raise VoiceCloneRequired("Record your voice sample before asking for a voice note.",
                                 action="Upload a 30 s - 3 min recording with POST /user/voice, then try again.")


# ------------------------------------------------------------------ worker side


@dataclass
class PerformDeps:
    db: Database
    provider: VoiceProvider
    generator: TextGenerator
    fallback: TextGenerator
    settings: Settings
    pool: VoicePool


def run_perform(job: dict[str, Any], deps: PerformDeps, progress: Progress) -> dict[str, Any]:
    """The perform job body. A failure is undone by `perform_job_failed` once the job is failed,
    whoever fails it; a store outage is retried as a whole (the charge, keyed by job, carries
    over)."""
    return _perform(job, deps, progress)


def perform_job_failed(db: Database, job: dict[str, Any], error: dict[str, Any]) -> None:
    """Failure hook of perform jobs (shared.jobs.model.KINDS): give back the characters."""
    if quota.release(db, ObjectId(job["user_id"]), job["_id"]):
        log.info("perform failed after reserving characters; given back", extra={"error": error.get("error")})


def _perform(job: dict[str, Any], deps: PerformDeps, progress: Progress) -> dict[str, Any]:
    db, provider, settings = deps.db, deps.provider, deps.settings
    user = users.by_id(db, ObjectId(job["user_id"]))
    if user is None:
        raise VoiceCloneRequired("The account no longer exists.")
    prefs = read_settings(user)
    routine = get_routine(job["payload"]["routine_type"])
    topic = job["payload"]["topic"]

    progress("reserving", 0.05)
    shortest, longest = note_costs(routine, prefs.language, provider.model_id)
    held = quota.reserve(db, user, job["_id"], longest=longest, shortest=shortest, model=provider.model_id,
                         provider=provider.name)

    progress("composing", 0.1)
    note = _composed_note(job, deps, routine, topic, prefs.language,
                          budget_chars=raw_chars_within(held.held, provider.model_id))
    text = note["text"]
    raw = len(text)
    effective = effective_chars(raw, provider.model_id)

    progress("acquiring_voice", 0.4)
    chunks = split_for_synthesis(text, settings.synthesis_chunk_chars)
    voice_settings = voice_settings_for(prefs, routine)
    pool = deps.pool
    lease = pool.acquire(user, job["_id"])
    try:
        progress("synthesizing", 0.5)
        try:
            audio, provider_cost = _speak(provider, chunks, lease.voice_id, voice_settings)
        except VoiceNotFound:
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

    progress("mixing", 0.8)
    try:
        rendered = render_note(audio, add_background=prefs.add_background_sound,
                               background_volume=prefs.background_volume,
                               fan_loop_path=settings.fan_loop_path or None,
                               target_lufs=settings.note_target_lufs, true_peak_dbtp=settings.note_true_peak_dbtp,
                               # each note its own stretch of the noise bed; a redelivered job the same one
                               seed=zlib.crc32(job["_id"].encode()))
    except AudioDecodeError as exc:  # the provider's chunks are not audio: its fault, not the user's
        raise ProviderUnavailable("The voice provider returned unusable audio "
                                  f"(the voice chunks could not be decoded ({exc})).") from exc
    except ValueError as exc:  # silent or empty audio from the provider
        raise ProviderUnavailable(f"The voice provider returned unusable audio ({exc}).") from exc

    voice_match = score_note(rendered.voice, rendered.sample_rate, user)

    progress("storing", 0.9)
    recording = recordings.store(db, job_id=job["_id"], user_id=job["user_id"], mp3=rendered.mp3, meta={
        "title": prefs.voice_note_name or routine.title(prefs.language),
        "date": (prefs.voice_note_date.isoformat() if prefs.voice_note_date else now().date().isoformat()),
        "routine_type": routine.type, "topic": topic, "text": text, "language": prefs.language,
        "duration_s": round(rendered.duration_s, 3), "loudness_lufs": round(rendered.loudness_lufs, 2),
        "voice_id": voice_id, "chars_raw": raw, "chars_effective": effective, "provider_cost": provider_cost,
        "model": provider.model_id, "provider": provider.name, "text_provider": note["provider"],
        "text_model": note["model"], "voice_match": voice_match})
    quota.settle(db, user["_id"], job["_id"], held, raw=raw, effective=effective, provider_cost=provider_cost,
                 also_set={"last_perform_at": now()})
    charged = quota.state(db, user["_id"])
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
        "voice_match": recording.get("voice_match"),
    }


def _composed_note(job: dict[str, Any], deps: PerformDeps, routine, topic: str, language: str,
                   budget_chars: int) -> dict[str, Any]:
    """Compose once per job: a redelivered task speaks (and charges) the same text."""
    saved = (job.get("work") or {}).get("note")
    if saved:
        return saved
    seed = int(job["_id"][:8], 16)
    prompt = build_voice_note_prompt(routine, topic, language, seed=seed, budget_chars=budget_chars)
    composed = compose_voice_note(deps.generator, deps.fallback, prompt)
    note = {"text": composed.text, "provider": composed.provider, "model": composed.model,
            "fell_back": composed.fell_back, "problems": composed.problems[:10]}
    # First writer wins: two runs of one job at once (a duplicate delivery) must speak, charge
    # and store the same text, so the loser adopts the note already saved.
    return save_work(deps.db, job["_id"], "note", note)


def _speak(provider: VoiceProvider, chunks: list[str], voice_id: str, voice_settings) -> tuple[list[bytes], int | None]:
    audio: list[bytes] = []
    costs: list[int] = []
    for chunk in chunks:
        result = provider.synthesize(chunk, voice_id, voice_settings)
        audio.append(result.audio)
        if result.character_cost is not None:
            costs.append(result.character_cost)
    return audio, (sum(costs) if costs else None)

