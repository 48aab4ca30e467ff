"""Offline stand-in for the voice provider: espeak-ng (or Piper) shaped to the speaker.

**This is not voice cloning.** When no ElevenLabs key is configured the service still has to
work end to end (development, tests, demos, an air-gapped install), so this adapter implements
the same VoiceProvider port with a local formant synthesizer. "Creating a voice" measures three
coarse traits of the sample (median pitch, pitch spread, speaking rate; see
`shared.audio.voiceprint`) and synthesis speaks with a generic espeak-ng voice whose pitch and
rate are set from them: a deep voice gets a low male voice, a high one a higher female voice, a
quick talker a quicker pace. Nobody will mistake it for the user; it is recognisably *theirs*
only in register and tempo.

State
-----
Voices live in MongoDB, collection `local_provider_voices`, shared by every API and worker
process: `{_id: "lv_<hex>", slot, name, labels, category: "cloned", voiceprint, created_at}`.
The running count of synthesised characters is a counter document in `local_provider_usage`
(`{_id: "characters", count}`), kept apart so the voices collection holds voices only.

Slot accounting (race-free by construction)
-------------------------------------------
Like an ElevenLabs account, the stand-in has `voice_limit` custom-voice slots, and
create_voice raises VoiceLimitReached when all are taken. Each voice document carries a
`slot` number in 0..voice_limit-1 under a *unique index*. Creating a voice reads the slots in
use and inserts the new document into the lowest free one; two processes that pick the same
slot cannot both succeed (the server rejects the second insert with a duplicate-key error and
that process moves on to the next free slot). Since slot numbers are bounded by the limit and
unique, there can never be more than `voice_limit` voices, whatever the interleaving.

There is no separate counter to drift: the insert *is* the reservation and the delete *is* the
release, each a single-document atomic write, so a process dying at any point cannot leak or
double-count a slot. `voice_slots_used` is simply the number of voice documents.

One edge: if an operator *lowers* `voice_limit` while voices occupy slots above the new limit,
those voices stay (as at ElevenLabs after a plan downgrade) and still count; creation is then
refused while the count is at or above the limit. That check is a read, so two creates racing
exactly at that moment could overshoot by the number of free low slots; with a stable limit the
unique index alone decides and there is no race.

Synthesis
---------
* engine: espeak-ng run as a subprocess (no shell, text on stdin, never on the command line,
  so a text starting with "--help" is spoken; "[[...]]" phoneme-input brackets are broken up so
  they are spoken rather than interpreted), WAV on stdout, with a timeout. If a Piper voice
  model for the language is configured (`piper_model_dir` holding `<lang>_*.onnx` files with
  their `.onnx.json`) and the `piper` executable is on PATH, Piper speaks instead (more natural,
  but its pitch is the model's own: only the pace follows the speaker).
* language: the port's `synthesize` has no language argument, so it is detected from the text:
  the share of very common Spanish vs English function words (plus Spanish-only letters such as
  ñ, ¿, ¡ and accented vowels). Texts with no signal either way use `language_default`.
* pitch: espeak's `-p` (0-99) does not map to Hz linearly and depends on the base voice, so the
  voice variant (`+m3` male, `+f3` female, chosen by the speaker's F0 around 165 Hz) and `-p`
  come from a calibration table of the F0 espeak-ng actually produces (measured with
  `shared.audio.voiceprint` on a test sentence), inverted by interpolation in log-frequency.
  The synthesized median F0 lands within a few percent of the speaker's, clamped to what
  espeak can produce (about 72-333 Hz).
* rate: espeak speaks ~4.5 syllables per second at its default 175 words per minute; the
  speaker's rate maps to `175 * rate / 4.5` wpm clamped to 120-220, then times
  `settings.speed` (clamped to 0.7-1.2, the range ElevenLabs accepts).
* VoiceSettings `stability`, `similarity_boost`, `style` and `use_speaker_boost` steer a neural
  model at ElevenLabs; a formant synthesizer has nothing they could audibly modulate (espeak's
  command line has no intonation-range control), so they are accepted and ignored.
* output: espeak's 22.05 kHz (Piper's model rate) is resampled to 44.1 kHz, peak-normalised to
  -1 dBFS and encoded as 128 kbit/s MP3, the same format as ElevenLabs' `mp3_44100_128`.
"""

from __future__ import annotations

import io
import logging
import math
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import unicodedata
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError
from scipy import signal

from shared.audio import codec
from shared.audio.voiceprint import Voiceprint, measure_voiceprint
from shared.errors import (
    ProviderRejected,
    ProviderUnavailable,
    VoiceLimitReached,
    VoiceNotFound,
)
from shared.providers.voice.base import RemoteVoice, Subscription, Synthesis, VoiceSettings

log = logging.getLogger(__name__)

PROVIDER_NAME = "local"
MODEL_ESPEAK = "local-espeak"
MODEL_PIPER = "local-piper"

VOICES_COLLECTION = "local_provider_voices"
USAGE_COLLECTION = "local_provider_usage"
CHARACTERS_DOC_ID = "characters"
SLOT_INDEX_NAME = "slot_unique"
VOICE_ID_PREFIX = "lv_"

#: the stand-in has no real character budget; large enough never to bind, reported like a plan's
CHARACTER_LIMIT = 10_000_000
#: one request's text bound: ~11 minutes of speech, keeps a worker's memory within ~250 MB
MAX_TEXT_CHARS = 10_000
#: samples are a few minutes at most (the upload rules cap them at 3); bounds a hostile file
MAX_SAMPLE_S = 600.0
#: voiceprints are measured at this rate; enough for pitch and the syllable envelope
ANALYSIS_SR = 16_000
OUTPUT_SR = 44_100
OUTPUT_KBPS = 128
OUTPUT_PEAK = 10 ** (-1.0 / 20)  # -1 dBFS

#: espeak-ng takes milliseconds per sentence; this only stops a hung process
SYNTH_TIMEOUT_BASE_S = 20.0
SYNTH_TIMEOUT_PER_CHAR_S = 0.01

SPEED_MIN, SPEED_MAX = 0.7, 1.2
DEFAULT_WPM = 175
WPM_MIN, WPM_MAX = 120, 220
#: syllables per second a typical speaker (and espeak at 175 wpm) articulates
REFERENCE_SYLLABLES_PER_S = 4.5
ESPEAK_AMPLITUDE = 100  # espeak's default; level is set by peak normalisation afterwards
DEFAULT_PITCH = 50
#: F0 (Hz) from which the female base variant is used; both variants can produce 147-172 Hz
FEMALE_VARIANT_FROM_HZ = 165.0

#: (espeak -p, median F0 in Hz it produced) per base variant; espeak-ng 1.51, measured with
#: shared.audio.voiceprint on a 7-second English sentence (Spanish differs by < 2 %). The shape
#: comes from espeak's pitch formula and is stable across versions; a small offset in another
#: version only moves the result by the same few percent.
PITCH_CURVES: dict[str, tuple[tuple[int, float], ...]] = {
    "m3": ((0, 72.2), (10, 76.2), (30, 87.5), (50, 103.3), (70, 125.5), (90, 155.7), (99, 172.0)),
    "f3": ((0, 146.7), (10, 155.9), (30, 176.4), (50, 207.0), (70, 248.5), (90, 303.1), (99, 332.7)),
}

#: language code -> espeak-ng voice
ESPEAK_VOICES = {"en": "en-us", "es": "es"}

_ES_WORDS = frozenset("""
de la que el en y los se del las un por con no una su para es al lo como más pero sus le ya o
este sí porque esta entre cuando muy sin sobre también me hasta hay donde quien desde todo nos
durante todos uno les ni contra otros ese eso ante ellos e esto mí antes algunos qué unos yo otro
otras otra él tanto esa estos mucho quienes nada muchos cual poco ella estar estas algunas algo
nosotros mi mis tú te ti tu tus ellas nosotras vosotros os mío mía tuyo tuya hola gracias
está están estoy eres soy somos son fue era hoy mañana bien buenos buenas días tarde noche
""".split())
_EN_WORDS = frozenset("""
the of and to in is you that it he was for on are as with his they i at be this have from or one
had by but not what all were we when your can said there use an each which she do how their if
will up other about out many then them these so some her would make like him into time has look
two more go see no way could people my than first been call who its now find long down day did
get come made may part hello hi thanks thank today tomorrow just our me am i'm it's don't
""".split())
_ES_ONLY_CHARS = frozenset("ñáéíóúü¿¡")
_WORD_RE = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def detect_language(text: str, default: str = "en") -> str:
    """'es' or 'en' for `text`, by the share of common function words of each language.

    Function words make up ~40 % of running text in both languages and barely overlap ("no" and
    "a" are the notable shared ones), so even a sentence decides reliably; Spanish-only letters
    add evidence. `default` wins ties (a text of names and numbers)."""
    lowered = text.lower().replace("\u2019", "'")
    words = _WORD_RE.findall(lowered)
    es = sum(w in _ES_WORDS for w in words)
    en = sum(w in _EN_WORDS for w in words)
    es += sum(1 for ch in lowered if ch in _ES_ONLY_CHARS) * 0.5
    if es > en:
        return "es"
    if en > es:
        return "en"
    return default


def espeak_pitch(f0_hz: float | None) -> tuple[str | None, int]:
    """(variant, -p value) that makes espeak-ng speak at about `f0_hz`; (None, 50) when unknown."""
    if f0_hz is None or not math.isfinite(f0_hz) or f0_hz <= 0:
        return None, DEFAULT_PITCH
    variant = "f3" if f0_hz >= FEMALE_VARIANT_FROM_HZ else "m3"
    curve = PITCH_CURVES[variant]
    pitches = np.array([p for p, _ in curve], dtype=float)
    log_f0 = np.log([f for _, f in curve])
    # np.interp clamps outside the table: a 60 Hz bass gets m3 at -p 0, a child f3 at -p 99
    p = float(np.interp(math.log(f0_hz), log_f0, pitches))
    return variant, int(round(min(99.0, max(0.0, p))))


def espeak_wpm(syllables_per_s: float | None, speed: float = 1.0) -> int:
    """Words per minute for espeak from the speaker's articulation rate and the requested speed."""
    base = DEFAULT_WPM
    if syllables_per_s is not None and math.isfinite(syllables_per_s) and syllables_per_s > 0:
        base = min(WPM_MAX, max(WPM_MIN, DEFAULT_WPM * syllables_per_s / REFERENCE_SYLLABLES_PER_S))
    factor = min(SPEED_MAX, max(SPEED_MIN, float(speed))) if math.isfinite(speed) else 1.0
    return int(round(base * factor))


def speakable_text(text: str) -> str:
    """The text as the synthesizer should read it: control characters (other than newline and
    tab) removed, Unicode normalised to NFC (espeak knows precomposed "é", not "e" + accent) and
    "[[" / "]]" broken up: espeak-ng reads "[[...]]" as phoneme mnemonics by default."""
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL_RE.sub(" ", text)
    text = text.replace("[[", "[ [").replace("]]", "] ]")
    return text


@dataclass(frozen=True)
class _Voice:
    voice_id: str
    voiceprint: Voiceprint


class LocalVoiceProvider:
    """VoiceProvider over espeak-ng (or Piper) and MongoDB. Thread- and process-safe: all state
    is in the database and every write is a single-document atomic operation."""

    name = PROVIDER_NAME

    def __init__(self, db: Database, *, voice_limit: int = 10, language_default: str = "en",
                 espeak_path: str | None = None, piper_model_dir: str | Path | None = None) -> None:
        if voice_limit < 1:
            raise ValueError("voice_limit must be at least 1")
        if language_default not in ESPEAK_VOICES:
            raise ValueError(f"language_default must be one of {sorted(ESPEAK_VOICES)}")
        self.db = db
        self.voice_limit = int(voice_limit)
        self.language_default = language_default
        self.espeak_path = espeak_path
        self.piper_model_dir = Path(piper_model_dir) if piper_model_dir else None
        self._voices = db[VOICES_COLLECTION]
        self._usage = db[USAGE_COLLECTION]
        self._indexes_ready = False
        self._index_lock = threading.Lock()
        self.model_id = MODEL_PIPER if self._piper_model(language_default) else MODEL_ESPEAK

    def __repr__(self) -> str:
        return f"LocalVoiceProvider(db={self.db.name!r}, voice_limit={self.voice_limit}, model_id={self.model_id!r})"

    # --- voices -------------------------------------------------------------------------------

    def create_voice(self, name: str, sample_mp3: bytes, labels: dict[str, str] | None = None) -> str:
        """Measure the sample's voiceprint and store a voice in a free slot; return its id.

        The sample is analysed *before* a slot is taken, so a slot is never held by a voice
        that is still being measured (and a bad sample takes none)."""
        name = _require_name(name)
        labels = _clean_labels(labels)
        if not sample_mp3:
            raise ProviderRejected("The voice sample is empty.", provider=self.name,
                                        provider_code="invalid_sample")
        try:
            samples = codec.decode_to_mono(sample_mp3, ANALYSIS_SR, max_seconds=MAX_SAMPLE_S)
        except codec.AudioDecodeError as exc:
            raise ProviderRejected(f"The voice sample could not be decoded: {exc}",
                                        provider=self.name, provider_code="invalid_sample") from exc
        voiceprint = measure_voiceprint(samples, ANALYSIS_SR)
        if voiceprint.f0_hz is None:
            # ElevenLabs accepts any audio; so does the stand-in (it speaks at a default pitch),
            # but an operator looking at odd output should find why.
            log.warning("local voice sample has no measurable pitch; using a default voice",
                        extra={"voice_name": name})

        self._ensure_indexes()
        doc: dict[str, Any] = {
            "name": name,
            "labels": labels,
            "category": "cloned",
            "voiceprint": voiceprint.to_dict(),
            "created_at": datetime.now(timezone.utc),
        }
        return self._insert_in_free_slot(doc)

    def _insert_in_free_slot(self, doc: dict[str, Any]) -> str:
        # A few passes: each reads the occupied slots and tries the free ones lowest first. A
        # duplicate-key error means another process took that slot between our read and our
        # insert; the next free one is tried. A full pass lost to races re-reads (a delete may
        # have freed a slot meanwhile). Passes are bounded so churn cannot spin a worker; the
        # caller then sees VoiceLimitReached, which means "retry later" anyway.
        for _ in range(3):
            occupied = {d["slot"] for d in self._voices.find({}, {"slot": 1, "_id": 0}) if "slot" in d}
            # a lowered voice_limit leaves voices in slots >= the limit; they still count
            if len(occupied) >= self.voice_limit:
                break
            free = [s for s in range(self.voice_limit) if s not in occupied]
            for slot in free:
                voice_id = VOICE_ID_PREFIX + secrets.token_hex(12)
                try:
                    self._voices.insert_one({"_id": voice_id, "slot": slot, **doc})
                except DuplicateKeyError:
                    continue
                log.info("local voice created", extra={"voice_id": voice_id, "slot": slot})
                return voice_id
        raise VoiceLimitReached(
            f"All {self.voice_limit} local voice slots are in use.", provider=self.name,
            provider_code="voice_limit_reached")

    def rename_voice(self, voice_id: str, name: str) -> None:
        name = _require_name(name)
        result = self._voices.update_one({"_id": _voice_key(voice_id)}, {"$set": {"name": name}})
        if result.matched_count == 0:
            raise self._not_found(voice_id)

    def delete_voice(self, voice_id: str) -> None:
        # deleting the document frees its slot: there is nothing else to release
        result = self._voices.delete_one({"_id": _voice_key(voice_id)})
        if result.deleted_count == 0:
            raise self._not_found(voice_id)
        log.info("local voice deleted", extra={"voice_id": voice_id})

    def list_voices(self) -> Iterator[RemoteVoice]:
        cursor = self._voices.find({}, {"name": 1, "category": 1, "labels": 1}).sort(
            [("created_at", ASCENDING), ("_id", ASCENDING)])
        for doc in cursor:
            yield RemoteVoice(
                voice_id=doc["_id"],
                name=doc.get("name", ""),
                category=doc.get("category", "cloned"),
                labels={str(k): str(v) for k, v in (doc.get("labels") or {}).items()},
            )

    def voiceprint(self, voice_id: str) -> Voiceprint:
        """The traits measured when the voice was created (not part of the port; diagnostics)."""
        return self._load(voice_id).voiceprint

    def subscription(self) -> Subscription:
        usage = self._usage.find_one({"_id": CHARACTERS_DOC_ID}) or {}
        return Subscription(
            voice_limit=self.voice_limit,
            voice_slots_used=self._voices.count_documents({}),
            character_count=int(usage.get("count", 0)),
            character_limit=CHARACTER_LIMIT,
        )

    # --- synthesis ----------------------------------------------------------------------------

    def synthesize(self, text: str, voice_id: str, settings: VoiceSettings) -> Synthesis:
        if not text.strip():
            raise ValueError("nothing to synthesize: the text is empty")
        if len(text) > MAX_TEXT_CHARS:
            raise ProviderRejected(
                f"The text is {len(text)} characters; the local voice speaks at most {MAX_TEXT_CHARS} per request.",
                provider=self.name, provider_code="text_too_long")
        voice = self._load(voice_id)
        language = detect_language(text, self.language_default)
        spoken = speakable_text(text)
        wpm = espeak_wpm(voice.voiceprint.syllables_per_s, settings.speed)

        pcm = sample_rate = None
        model_id = MODEL_ESPEAK
        piper_model = self._piper_model(language)
        if piper_model is not None:
            try:
                pcm, sample_rate = self._run_piper(spoken, piper_model, wpm / DEFAULT_WPM)
                model_id = MODEL_PIPER
            except ProviderUnavailable as exc:
                # the stand-in's job is to produce a note; espeak is always there
                log.warning("piper failed; speaking with espeak-ng instead", extra={"error": exc.message})
        if pcm is None:
            variant, pitch = espeak_pitch(voice.voiceprint.f0_hz)
            pcm, sample_rate = self._run_espeak(spoken, language, variant, pitch, wpm)

        audio = codec.encode_mp3(_to_output(pcm, sample_rate), OUTPUT_SR, OUTPUT_KBPS)
        # counted after success: a failed synthesis costs nothing, as at ElevenLabs
        self._usage.update_one({"_id": CHARACTERS_DOC_ID}, {"$inc": {"count": len(text)}}, upsert=True)
        return Synthesis(audio=audio, model_id=model_id, characters=len(text), character_cost=None)

    def _run_espeak(self, text: str, language: str, variant: str | None, pitch: int, wpm: int
                    ) -> tuple[np.ndarray, int]:
        exe = self.espeak_path or shutil.which("espeak-ng") or shutil.which("espeak")
        if not exe:
            raise ProviderUnavailable("espeak-ng is not installed.", provider=self.name,
                                           provider_code="engine_missing",
                                           action="An operator must install espeak-ng (apt install espeak-ng).")
        voice = ESPEAK_VOICES[language] + (f"+{variant}" if variant else "")
        # --stdin: the text never becomes an argument, so nothing in it can be read as an
        # option; -b 1: the input is UTF-8 (accented Spanish); no shell is involved.
        argv = [exe, "--stdout", "--stdin", "-b", "1", "-v", voice, "-p", str(pitch), "-s", str(wpm),
                "-a", str(ESPEAK_AMPLITUDE)]
        out = self._run_engine("espeak-ng", argv, text.encode("utf-8"), len(text))
        try:
            return _read_wav(out)
        except (wave.Error, EOFError, ValueError) as exc:
            raise ProviderUnavailable(f"espeak-ng produced unreadable audio: {exc}", provider=self.name,
                                           provider_code="engine_failed") from exc

    def _run_piper(self, text: str, model: Path, rate_factor: float) -> tuple[np.ndarray, int]:
        exe = shutil.which("piper")
        if not exe:
            raise ProviderUnavailable("piper is not installed.", provider=self.name,
                                           provider_code="engine_missing")
        with tempfile.TemporaryDirectory(prefix="nv-piper-") as tmp:
            out_path = Path(tmp) / "out.wav"
            # Piper speaks one utterance per input line and, with --output_file, each line
            # overwrites the file: the whole text goes as one line. length_scale is duration
            # per phoneme, the inverse of rate.
            argv = [exe, "--model", str(model), "--output_file", str(out_path),
                    "--length_scale", f"{1.0 / max(rate_factor, 0.1):.3f}"]
            line = " ".join(text.split()) + "\n"
            self._run_engine("piper", argv, line.encode("utf-8"), len(text))
            try:
                return _read_wav(out_path.read_bytes())
            except (OSError, wave.Error, EOFError, ValueError) as exc:
                raise ProviderUnavailable(f"piper produced unreadable audio: {exc}", provider=self.name,
                                               provider_code="engine_failed") from exc

    def _run_engine(self, engine: str, argv: list[str], stdin: bytes, n_chars: int) -> bytes:
        timeout = SYNTH_TIMEOUT_BASE_S + SYNTH_TIMEOUT_PER_CHAR_S * n_chars
        try:
            proc = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:  # run() has killed the process
            raise ProviderUnavailable(f"{engine} did not finish within {timeout:.0f} s.", provider=self.name,
                                           provider_code="engine_timeout") from None
        except OSError as exc:  # not executable, vanished, out of processes
            raise ProviderUnavailable(f"{engine} could not be started: {exc}", provider=self.name,
                                           provider_code="engine_missing") from exc
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip()[-500:]
            raise ProviderUnavailable(f"{engine} failed (exit {proc.returncode}): {err}", provider=self.name,
                                           provider_code="engine_failed")
        return proc.stdout

    def _piper_model(self, language: str) -> Path | None:
        """The first `<lang>_*.onnx` Piper model (with its .onnx.json) in piper_model_dir, when
        the piper executable is also available; None otherwise."""
        if self.piper_model_dir is None or shutil.which("piper") is None:
            return None
        try:
            candidates = sorted(self.piper_model_dir.glob(f"{language}_*.onnx"))
        except OSError:
            return None
        for model in candidates:
            if model.with_name(model.name + ".json").is_file():
                return model
        return None

    # --- helpers ------------------------------------------------------------------------------

    def _ensure_indexes(self) -> None:
        """The unique slot index is what makes slot accounting race-free, so it must exist
        before this instance's first insert. create_index is idempotent; done once per instance
        rather than in the constructor so building a provider needs no database round trip."""
        if self._indexes_ready:
            return
        with self._index_lock:
            if not self._indexes_ready:
                ensure_indexes(self.db)
                self._indexes_ready = True

    def _load(self, voice_id: str) -> _Voice:
        doc = self._voices.find_one({"_id": _voice_key(voice_id)}, {"voiceprint": 1})
        if doc is None:
            raise self._not_found(voice_id)
        return _Voice(voice_id=doc["_id"], voiceprint=Voiceprint.from_dict(doc.get("voiceprint")))

    def _not_found(self, voice_id: str) -> VoiceNotFound:
        return VoiceNotFound(f"Local voice '{voice_id}' does not exist.", provider=self.name,
                                  provider_code="voice_not_found")


def ensure_indexes(db: Database) -> None:
    """Create the local provider's indexes (idempotent); bootstrap may call it at start-up."""
    db[VOICES_COLLECTION].create_index([("slot", ASCENDING)], unique=True, name=SLOT_INDEX_NAME)


def _voice_key(voice_id: str) -> str:
    # a dict or other non-string id would turn the filter into a query operator
    if not isinstance(voice_id, str):
        raise TypeError("voice_id must be a string")
    return voice_id


def _require_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError("a voice name must be a non-empty string")
    return name


def _clean_labels(labels: dict[str, str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (labels or {}).items():
        key = str(key)
        # MongoDB field names cannot start with "$" or contain "."; ElevenLabs validates labels
        # too, so reject rather than silently rename
        if not key or key.startswith("$") or "." in key or "\x00" in key:
            raise ProviderRejected(f"Invalid voice label name {key!r}.", provider=PROVIDER_NAME,
                                        provider_code="invalid_labels")
        out[key] = str(value)
    return out


def _read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Float mono PCM and rate from a 16-bit PCM WAV. espeak-ng streams its WAV, so the header's
    sizes are placeholders (about 2^30 frames); `readframes` stops at the real end of data."""
    with wave.open(io.BytesIO(data)) as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"expected 16-bit PCM, got {8 * wav.getsampwidth()}-bit")
        channels, rate = wav.getnchannels(), wav.getframerate()
        raw = wav.readframes(wav.getnframes())
    usable = len(raw) // (2 * channels) * (2 * channels)
    pcm = np.frombuffer(raw[:usable], dtype="<i2").astype(np.float32) / 32768.0
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1)
    if pcm.size == 0:
        raise ValueError("no audio frames")
    return pcm, rate


def _to_output(pcm: np.ndarray, sample_rate: int) -> np.ndarray:
    """Resample to 44.1 kHz (polyphase: exact 2:1 for espeak's 22.05 kHz) and normalise the peak."""
    if sample_rate != OUTPUT_SR:
        g = math.gcd(sample_rate, OUTPUT_SR)
        pcm = signal.resample_poly(pcm, OUTPUT_SR // g, sample_rate // g).astype(np.float32)
    peak = float(np.max(np.abs(pcm))) if pcm.size else 0.0
    if peak > 0:
        pcm = pcm * np.float32(OUTPUT_PEAK / peak)
    return pcm
