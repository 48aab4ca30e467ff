"""`python -m bench.worker_shim <celery worker args>`: the ordinary Celery worker, with measuring
hooks for the benchmarks. Nothing the task does changes; the hooks only note times:

- `JobStore._mirror` (the Lua script that stores the job's view in Redis and PUBLISHes it on the
  job's channel) notes `time.time()` just before the publish, pushed to the Redis list
  `bench:published` as "job_id seq timestamp" once the publish has returned (push latency);
- the provider calls (Gemini generate, ElevenLabs synthesize), the note rendering
  (`render_note`: decode, mix, loudness, MP3 encode) and the note's voice match scoring
  (`score_note`: the speaker encoder) note their durations, pushed to
  `bench:work` as "job_id what seconds" (orchestration overhead = end to end minus these).

The notes stay in the process until the task has returned (`task_postrun`, after the job's
terminal event was published) and go to Redis then, in one pipeline: pushed as they were
taken, their ~14 round trips per perform (one per publish, one per timed call) were counted as
orchestration overhead (bench/README.md, issue 15). Readers allow for the delay.

Pool children are forked after the patches, so every task is measured.
"""

from __future__ import annotations

import functools
import sys
import time

from shared.jobs import service
from shared.logs import job_id_var

PUBLISHED_KEY = "bench:published"
WORK_KEY = "bench:work"
_original_mirror = service.JobStore._mirror
#: (Redis list, line) noted during the current task, pushed once it has returned
_notes: list[tuple[str, str]] = []


def _flush_notes(**_) -> None:
    if not _notes:
        return
    from workers import runtime

    pipe = runtime.redis().pipeline(transaction=False)
    for key, line in _notes:
        pipe.rpush(key, line)
    _notes.clear()
    try:
        pipe.execute()
    except Exception:
        pass


def _stamped_mirror(self, job_id, owner_id, view):
    stamp = time.time()
    _original_mirror(self, job_id, owner_id, view)
    _notes.append((PUBLISHED_KEY, f"{job_id} {view.seq} {stamp:.6f}"))


def _note_work(what: str, fn):
    @functools.wraps(fn)
    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _notes.append((WORK_KEY, f"{job_id_var.get()} {what} {time.perf_counter() - started:.6f}"))
    return timed


def install() -> None:
    from celery import signals

    signals.task_postrun.connect(_flush_notes, weak=False)
    service.JobStore._mirror = _stamped_mirror
    from shared.perform import service as perform_service
    from shared.perform.text.gemini import GeminiTextGenerator
    from shared.providers.voice.elevenlabs import ElevenLabsVoiceProvider

    GeminiTextGenerator.generate = _note_work("llm", GeminiTextGenerator.generate)
    ElevenLabsVoiceProvider.synthesize = _note_work("tts", ElevenLabsVoiceProvider.synthesize)
    perform_service.render_note = _note_work("dsp", perform_service.render_note)
    perform_service.score_note = _note_work("score", perform_service.score_note)


if __name__ == "__main__":
    install()
    from celery.__main__ import main

    sys.argv = ["celery", *sys.argv[1:]]
    sys.exit(main())
