"""The routine catalog: complete in both languages, sane TTS hints, clear 422 for unknown types."""

from __future__ import annotations

import pytest

from shared.errors import ValidationFailed
from shared.perform.routines import LANGUAGES, get_routine, list_routines, normalize_language, routine_types


def test_catalog_has_six_to_ten_distinct_routines():
    types_ = routine_types()
    assert 6 <= len(types_) <= 10
    assert len(set(types_)) == len(types_)
    assert {"morning_motivation", "gratitude", "calm_breathing"} <= set(types_)


@pytest.mark.parametrize("routine", list_routines(), ids=lambda r: r.type)
def test_every_routine_is_complete_in_both_languages(routine):
    assert 0.0 <= routine.style <= 1.0
    assert 0.7 <= routine.speed <= 1.2
    assert 10 <= routine.min_words < routine.max_words
    for lang in LANGUAGES:
        text = routine.text(lang)
        assert text.title.strip() and text.description.strip() and len(text.guidance) > 40
        t = text.templates
        assert t.generic_about and t.openings and t.topic_lines and t.body and t.closings
        assert all(line.count("{about}") == 1 for line in t.topic_lines)
    # the two languages are really different texts, not a copy
    assert routine.text("english").title != routine.text("spanish").title


def test_get_routine_returns_the_routine():
    r = get_routine("gratitude")
    assert r.type == "gratitude"
    assert r.title("spanish") == "Gratitud"


@pytest.mark.parametrize("bad", ["", "gratitud", "GRATITUDE", "unknown_routine", None])
def test_unknown_routine_is_a_422_listing_the_valid_types(bad):
    with pytest.raises(ValidationFailed) as info:
        get_routine(bad)
    err = info.value
    assert err.status == 422 and err.code == "VALIDATION_ERROR"
    for valid in routine_types():
        assert valid in err.message
    assert err.to_dict()["details"]["allowed"] == routine_types()


def test_public_view_hides_writer_guidance_and_templates():
    public = get_routine("focus_reset").to_public()
    assert set(public["languages"]) == set(LANGUAGES)
    assert set(public["languages"]["english"]) == {"title", "description"}
    assert public["target_words"]["min"] < public["target_words"]["max"]


@pytest.mark.parametrize("raw,expected", [("English", "english"), ("en", "english"), ("ES", "spanish"),
                                          ("español", "spanish"), (" spanish ", "spanish")])
def test_language_aliases(raw, expected):
    assert normalize_language(raw) == expected


def test_unsupported_language_is_a_422():
    with pytest.raises(ValidationFailed, match="english, spanish"):
        normalize_language("french")
