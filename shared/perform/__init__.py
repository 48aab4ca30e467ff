"""Perform, text side: routine catalog, safe prompt, post-checks and the compose policy.

Plain Python (no Celery, no FastAPI): the perform task calls `compose_voice_note` and gets
text that is safe to speak and bill.
"""

from shared.perform.compose import ComposedNote, compose_voice_note, text_generator_from_env
from shared.perform.prompt import VoiceNotePrompt, build_voice_note_prompt, normalize_topic
from shared.perform.routines import LANGUAGES, Routine, get_routine, list_routines, normalize_language
from shared.perform.text_checks import check_voice_note, clean_voice_note

__all__ = [
    "LANGUAGES", "ComposedNote", "Routine", "VoiceNotePrompt", "build_voice_note_prompt",
    "check_voice_note", "clean_voice_note", "compose_voice_note", "get_routine", "list_routines",
    "normalize_language", "normalize_topic", "text_generator_from_env",
]
