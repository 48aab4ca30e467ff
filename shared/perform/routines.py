"""The routine catalog: the kinds of voice note a user can ask for.

The catalog is data (`shared/data/routines.json`), loaded once per process through
importlib.resources so it also works from an installed wheel. Each routine carries, per
language, the user-facing title and description, guidance for the LLM writer and the local
composer's sentence templates, plus the TTS hints (`style`, `speed`) and a word range.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any, Mapping

from shared.errors import ValidationFailed

#: languages a voice note can be written in (the values of the user's `language` setting)
LANGUAGES: tuple[str, ...] = ("english", "spanish")

# Short codes and native names users and clients actually send; mapped to the setting values.
_LANGUAGE_ALIASES = {
    "english": "english", "en": "english", "eng": "english", "inglés": "english", "ingles": "english",
    "spanish": "spanish", "es": "spanish", "spa": "spanish", "español": "spanish", "espanol": "spanish",
}


def normalize_language(language: str) -> str:
    """'English', 'en', 'es', 'español' → 'english' | 'spanish'; anything else is a 422."""
    key = (language or "").strip().casefold()
    try:
        return _LANGUAGE_ALIASES[key]
    except KeyError:
        raise ValidationFailed(
            f"language {language!r} is not supported; use one of: {', '.join(LANGUAGES)}.",
            details={"field": "language", "allowed": list(LANGUAGES)},
        ) from None


@dataclass(frozen=True)
class Templates:
    """Sentence pools for the local composer, one set per routine and language."""

    generic_about: str  # how to refer to a topic we must not quote (too long / sentence-like)
    openings: tuple[str, ...]
    topic_lines: tuple[str, ...]  # each has exactly one "{about}"
    body: tuple[str, ...]
    closings: tuple[str, ...]


@dataclass(frozen=True)
class RoutineText:
    title: str
    description: str
    guidance: str
    templates: Templates


@dataclass(frozen=True)
class Routine:
    type: str
    style: float  # 0-1, fed to the TTS style heuristic
    speed: float  # 0.7-1.2, the TTS speaking rate
    min_words: int
    max_words: int
    texts: Mapping[str, RoutineText] = field(repr=False)

    def text(self, language: str) -> RoutineText:
        return self.texts[normalize_language(language)]

    def title(self, language: str) -> str:
        return self.text(language).title

    def to_public(self) -> dict[str, Any]:
        """What `GET /routines` shows: no writer guidance, no templates."""
        return {
            "type": self.type,
            "style": self.style,
            "speed": self.speed,
            "target_words": {"min": self.min_words, "max": self.max_words},
            "languages": {
                lang: {"title": t.title, "description": t.description} for lang, t in self.texts.items()
            },
        }


def _parse_routine(raw: dict[str, Any]) -> Routine:
    rtype = raw["type"]
    style, speed = float(raw["style"]), float(raw["speed"])
    lo, hi = int(raw["target_words"]["min"]), int(raw["target_words"]["max"])
    # Fail at load time, not in the middle of a perform job.
    if not 0.0 <= style <= 1.0:
        raise ValueError(f"routine {rtype}: style {style} outside 0-1")
    if not 0.7 <= speed <= 1.2:
        raise ValueError(f"routine {rtype}: speed {speed} outside 0.7-1.2")
    if not 10 <= lo < hi:
        raise ValueError(f"routine {rtype}: bad target_words {lo}-{hi}")
    texts: dict[str, RoutineText] = {}
    for lang in LANGUAGES:
        t = raw["languages"][lang]
        tpl = t["templates"]
        templates = Templates(
            generic_about=tpl["generic_about"],
            openings=tuple(tpl["openings"]),
            topic_lines=tuple(tpl["topic_lines"]),
            body=tuple(tpl["body"]),
            closings=tuple(tpl["closings"]),
        )
        if any(line.count("{about}") != 1 for line in templates.topic_lines):
            raise ValueError(f"routine {rtype}/{lang}: every topic line needs exactly one {{about}}")
        if not (templates.openings and templates.topic_lines and templates.body and templates.closings):
            raise ValueError(f"routine {rtype}/{lang}: empty template pool")
        texts[lang] = RoutineText(t["title"], t["description"], t["guidance"], templates)
    return Routine(rtype, style, speed, lo, hi, MappingProxyType(texts))


@functools.cache
def _catalog() -> Mapping[str, Routine]:
    raw = json.loads(resources.files("shared.data").joinpath("routines.json").read_text("utf-8"))
    routines = [_parse_routine(r) for r in raw["routines"]]
    by_type = {r.type: r for r in routines}
    if len(by_type) != len(routines):
        raise ValueError("routines.json: duplicate routine type")
    return MappingProxyType(by_type)


def list_routines() -> list[Routine]:
    """Every routine, in catalog order."""
    return list(_catalog().values())


def routine_types() -> list[str]:
    return list(_catalog().keys())


def get_routine(routine_type: str) -> Routine:
    """The routine, or ValidationFailed (422) naming the valid types."""
    try:
        return _catalog()[(routine_type or "").strip()]
    except KeyError:
        valid = routine_types()
        raise ValidationFailed(
            f"routine_type {routine_type!r} is unknown; use one of: {', '.join(valid)}.",
            details={"field": "routine_type", "allowed": valid},
        ) from None
