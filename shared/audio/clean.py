"""Turn an uploaded voice recording into the sample we send for cloning, or say why not.

    decoding     probe the bytes, decode to mono float PCM (bounded: see SampleRules)
    normalizing  find speech, trim the ends, shorten long pauses, normalise loudness under a
                 true-peak ceiling
    checking     measure, apply the rules, encode the MP3 we upload

Every rejection is one of the shared/errors.py sample errors, with a message that states the
measured value and the bound, and `details["report"]` when a quality report exists.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np

from shared.audio.codec import AudioDecodeError, AudioInfo, decode_to_mono, encode_mp3, probe, to_pcm16
from shared.audio.edit import apply_fades, keep_spans, splice
from shared.audio.loudness import integrated_loudness
from shared.audio.normalize import Normalized, normalize_loudness
from shared.audio.quality import QualityReport, clipping_ratio, snr_db
from shared.audio.speaker.checks import (
    MAX_SPLIT_COSINE,
    SpeakerAnalysis,
    analyse_speech,
    speech_only,
)
from shared.audio.speechlike import MIN_SYLLABLES_PER_S, speech_likeness
from shared.audio.vad import SpeechActivity, detect_speech
from shared.errors import (
    SampleClipped,
    SampleMultipleSpeakers,
    SampleNotSpeech,
    SampleTooLong,
    SampleTooQuiet,
    SampleTooShort,
    SampleUnsupported,
)

#: decode this much past max_total_s: enough to prove "too long", bounded against bombs
DECODE_MARGIN_S = 1.0
#: kept before the first word / after the last: onsets of unvoiced consonants (/s/, /h/) start
#: under the energy threshold, and P.56's 200 ms hangover covers decaying word endings
LEAD_S = 0.15
TAIL_S = 0.30
#: hangover counted into active speech time, after ITU-T P.56
SPEECH_HANGOVER_S = 0.20
#: crossfade where a pause is shortened (room tone into room tone) and fades at the file ends
SPLICE_MS = 30.0
EDGE_FADE_MS = 10.0
#: a decoded length this far under the declared one means the upload was cut off
TRUNCATION_TOLERANCE = 0.9


@dataclass(frozen=True)
class SampleRules:
    """Bounds for a clone sample. Loudness defaults sit inside the voice provider's guidance
    (-23..-18 LUFS, peaks under -3 dB); durations are the product's rules.

    sample_rate 44100: the MP3 we upload is 44.1 kHz, and a clone learns the whole band; a
    22/24 kHz working rate would throw away the 11-20 kHz sibilance and breath that make a
    voice recognisable. Every DSP stage is vectorised (about 0.1 s per minute of audio at
    44.1 kHz); the time goes to the MP3 encoder and to starting ffmpeg, not to the rate.

    min_loudness_lufs -50: speech quieter than that needs more than 30 dB of gain to reach the
    target, which lifts the recording's own hiss and 16-bit quantisation noise (about -98 dBFS)
    to an audible -68 dBFS; in practice it means a muted or distant microphone.

    max_clipping_ratio 1 %: share of speech samples piled up within 1 dB of the recording's
    peak (see quality.clipping_ratio). Clean speech scores under 0.01 %, the fixture driven
    +10 dB into clipping ~0.8 %, +20 dB 13-14 % (as PCM or re-encoded): past 1 % the distortion
    is plainly audible and the clone would learn it.

    min_snr_db 15: speech power over the noise floor. Below ~15 dB the background is as present
    as a quiet voice, and clones reproduce it as a hiss or hum under every note.
    """

    min_total_s: float = 30.0
    min_speech_s: float = 20.0
    max_total_s: float = 180.0
    target_lufs: float = -20.0
    true_peak_dbtp: float = -3.0
    max_inner_pause_s: float = 1.0
    min_loudness_lufs: float = -50.0
    max_clipping_ratio: float = 0.01
    min_snr_db: float = 15.0
    sample_rate: int = 44100
    mp3_bitrate_kbps: int = 128


@dataclass(frozen=True)
class CleanedSample:
    mp3: bytes
    #: hex SHA-256 of the normalised PCM quantised to 16-bit little-endian mono at
    #: rules.sample_rate: what the MP3 encodes. The pipeline is deterministic, so the same
    #: upload always hashes the same; hashing PCM rather than MP3 bytes keeps the hash stable
    #: across encoder upgrades and MP3 settings, which change bytes but not the voice.
    sha256: str
    report: QualityReport
    duration_s: float
    #: (256,) speaker embedding of the sample's speech (shared.audio.speaker), for scoring how
    #: much a clone's speech sounds like it
    speaker_embedding: np.ndarray


def clean_sample(data: bytes, rules: SampleRules = SampleRules(),
                 on_stage: Callable[[str], None] | None = None) -> CleanedSample:
    """Validate and clean an uploaded voice sample; raise a sample error if it cannot be used.

    `on_stage` is called with "decoding", "normalizing", "checking" as each starts ("checking"
    covers the rules and the final MP3 encode). Errors:

    * SampleUnsupported: not audio we read, empty, or cut off before `min_total_s`;
    * SampleTooLong: over `max_total_s` decoded (decoding stops just past the bound, so there is
      no report: it would describe a prefix);
    * SampleTooShort, SampleTooQuiet, SampleClipped, SampleNotSpeech, SampleMultipleSpeakers:
      with `details["report"]`.
    """
    stage = on_stage or (lambda _name: None)
    sr = rules.sample_rate

    stage("decoding")
    with _unreadable_upload():
        info = probe(data)
        samples = decode_to_mono(data, sr, max_seconds=rules.max_total_s + DECODE_MARGIN_S)
    _check_decoded(samples, info, rules)

    stage("normalizing")
    activity = detect_speech(samples, sr)
    edited = _condense(samples, activity, rules)
    normalized = normalize_loudness(edited, sr, rules.target_lufs, rules.true_peak_dbtp)

    stage("checking")
    report = _report(samples, activity, normalized, info, rules)
    _check_quality(report, edited, rules)
    speech = speech_only(samples, activity.padded_regions(0.0, SPEECH_HANGOVER_S))
    _check_speech_like(report, speech, sr)
    _check_noise(report, rules)
    # after the cheap rules: a sample refused for its level or length is not worth embedding
    speakers = analyse_speech(speech, sr)
    report = replace(report, speaker_consistency=100.0 * speakers.consistency,
                     speaker_split_cosine=speakers.split_cosine)
    _check_speakers(report, speakers)
    pcm16 = to_pcm16(normalized.samples)
    return CleanedSample(
        mp3=encode_mp3(normalized.samples, sr, rules.mp3_bitrate_kbps),
        sha256=hashlib.sha256(pcm16.tobytes()).hexdigest(),
        report=report,
        duration_s=report.duration_after_s,
        speaker_embedding=speakers.embedding.vector,
    )


def probe_upload(data: bytes) -> AudioInfo:
    """`codec.probe` for an upload: bytes that are not audio we read are SampleUnsupported."""
    with _unreadable_upload():
        return probe(data)


@contextmanager
def _unreadable_upload() -> Iterator[None]:
    # The codec's decode error is neutral; here the bytes are the user's upload, so it becomes
    # their sample error, with the codec's words as the message.
    try:
        yield
    except AudioDecodeError as exc:
        raise SampleUnsupported(str(exc)) from exc


def _check_decoded(samples: np.ndarray, info: AudioInfo, rules: SampleRules) -> None:
    decoded_s = len(samples) / rules.sample_rate
    if decoded_s > rules.max_total_s:
        # Only the first max_total_s + margin were decoded; quote the declared length when the
        # file states one that is longer, otherwise what we know.
        declared = info.duration_s if info.duration_s and info.duration_s > rules.max_total_s else None
        length = f"{declared:.1f} s long" if declared else f"longer than {rules.max_total_s:.0f} s"
        raise SampleTooLong(
            f"The recording is {length}; at most {rules.max_total_s:.0f} s is allowed.",
            details={"max_total_s": rules.max_total_s, "declared_duration_s": info.duration_s},
        )
    declared = info.duration_s
    if declared and decoded_s < TRUNCATION_TOLERANCE * declared and decoded_s < rules.min_total_s:
        raise SampleUnsupported(
            f"The file seems damaged or cut off: it declares {declared:.1f} s of audio, but only "
            f"{decoded_s:.1f} s could be decoded.",
            action="Upload the recording again; if it keeps failing, export it again from the recorder.",
            details={"declared_duration_s": declared, "decoded_duration_s": round(decoded_s, 2)},
        )


def _condense(samples: np.ndarray, activity: SpeechActivity, rules: SampleRules) -> np.ndarray:
    """Trim to the speech and shorten pauses longer than the rule; unchanged if no speech."""
    sr = rules.sample_rate
    if len(activity.regions) == 0:
        return samples
    overlap = round(SPLICE_MS * 1e-3 * sr)
    spans = keep_spans(activity.regions, len(samples), sr, max_pause_s=rules.max_inner_pause_s,
                       lead_s=LEAD_S, tail_s=TAIL_S, overlap=overlap)
    edited = splice([samples[start:end] for start, end in spans], overlap)
    fade = round(EDGE_FADE_MS * 1e-3 * sr)
    return apply_fades(edited, fade, fade)


def _report(samples: np.ndarray, activity: SpeechActivity, normalized: Normalized, info: AudioInfo,
            rules: SampleRules) -> QualityReport:
    sr = rules.sample_rate
    duration = len(samples) / sr
    speech_s = activity.speech_seconds(SPEECH_HANGOVER_S)
    spans = activity.padded_regions(0.0, SPEECH_HANGOVER_S)
    peak = normalized.true_peak_dbtp
    return QualityReport(
        duration_before_s=duration,
        duration_after_s=len(normalized.samples) / sr,
        speech_s=speech_s,
        speech_ratio=speech_s / duration if duration else 0.0,
        clipping_ratio=clipping_ratio(samples, spans),
        snr_db=snr_db(activity),
        loudness_before_lufs=normalized.loudness_before_lufs,
        loudness_after_lufs=normalized.loudness_after_lufs,
        true_peak_dbtp=peak if np.isfinite(peak) else None,
        sample_rate=sr,
        format=f"{info.format_name}/{info.codec_name}",
    )


def _check_quality(report: QualityReport, edited: np.ndarray, rules: SampleRules) -> None:
    """Apply the rules in the order a user should fix things: length, level, distortion here;
    then (clean_sample) whether it is speech at all, then noise and amount of speech (a
    noise-drowned voice also has little speech, but "too quiet" is the actionable message
    there)."""
    details = {"report": report.to_dict()}
    if report.duration_before_s < rules.min_total_s:
        raise SampleTooShort(
            f"The recording is {report.duration_before_s:.1f} s long; at least "
            f"{rules.min_total_s:.0f} s is needed.", details=details)
    loudness = report.loudness_before_lufs
    if loudness is None or loudness < rules.min_loudness_lufs:
        raise SampleTooQuiet(_quiet_message(edited, loudness, rules), details=details)
    if report.clipping_ratio > rules.max_clipping_ratio:
        raise SampleClipped(
            f"{report.clipping_ratio:.1%} of the speech is clipped (flattened at the recording's "
            f"maximum level); at most {100 * rules.max_clipping_ratio:g}% is acceptable.", details=details)


def _check_speech_like(report: QualityReport, speech: np.ndarray, sample_rate: int) -> None:
    """Music or noise dominating: before the noise rule, whose "the voice is N dB above the
    noise" would be wrong about a recording with no voice in it."""
    likeness = speech_likeness(speech, sample_rate)
    if likeness.speech:
        return
    if likeness.measured_s == 0:
        found = "We found no speech in the recording, only steady sound such as noise, a fan or a hum."
    else:
        found = (f"The recording does not sound mostly like speech: it has {likeness.syllables_per_s:.1f} "
                 f"syllables a second where one voice makes about 3 (at least {MIN_SYLLABLES_PER_S:g} is "
                 f"needed). Music or noise seems to cover the voice.")
    raise SampleNotSpeech(found, details={"report": report.to_dict(), "speech": likeness.to_dict()})


def _check_noise(report: QualityReport, rules: SampleRules) -> None:
    details = {"report": report.to_dict()}
    if report.snr_db < rules.min_snr_db:
        raise SampleTooQuiet(
            f"The voice is only {report.snr_db:.1f} dB above the background noise; at least "
            f"{rules.min_snr_db:.0f} dB is needed.", details=details)
    if report.speech_s < rules.min_speech_s:
        raise SampleTooShort(
            f"The recording has {report.speech_s:.1f} s of speech; at least "
            f"{rules.min_speech_s:.0f} s is needed.", details=details)


def _check_speakers(report: QualityReport, speakers: SpeakerAnalysis) -> None:
    if speakers.several_speakers:
        other_s = speakers.minority_windows * speakers.embedding.window_s
        raise SampleMultipleSpeakers(
            f"The recording seems to hold more than one voice: about {other_s:.0f} s of the speech "
            f"({speakers.minority_share:.0%}) sounds like a different person from the rest (the two "
            f"groups score {speakers.split_cosine:.2f} alike; one person's speech scores above "
            f"{MAX_SPLIT_COSINE:.2f}). A clone learns every voice it hears.",
            details={"report": report.to_dict(), "speakers": speakers.to_dict()})


def _quiet_message(edited: np.ndarray, loudness: float | None, rules: SampleRules) -> str:
    bound = f"speech needs to be louder than {rules.min_loudness_lufs:.0f} LUFS"
    if loudness is None:
        # under the -70 LUFS gate: quote the ungated reading so the user sees how far off it is
        loudness = integrated_loudness(edited, rules.sample_rate, absolute_gate=False)
        if loudness is None or loudness < -120.0:
            return f"The recording is silent; {bound}."
    return f"The recording is too quiet ({loudness:.1f} LUFS); {bound}."
