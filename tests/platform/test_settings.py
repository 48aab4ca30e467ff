"""Per-user settings: defaults, partial updates, validation."""

from __future__ import annotations

import pytest

DEFAULTS = {"language": "english", "voice_similarity": 0.75, "stability": 0.5, "add_background_sound": True,
            "background_volume": 0.3, "sex": None, "OS": None, "voice_note_name": "Voice note",
            "voice_note_date": None}


def test_defaults_then_partial_update(client, new_user):
    _, headers = new_user()
    assert client.get("/user/settings", headers=headers).json() == DEFAULTS
    resp = client.put("/user/settings", headers=headers,
                      json={"language": "spanish", "background_volume": 0.1, "voice_note_date": "2026-11-21"})
    assert resp.status_code == 200, resp.text
    expected = {**DEFAULTS, "language": "spanish", "background_volume": 0.1, "voice_note_date": "2026-11-21"}
    assert resp.json() == expected
    # persisted, and a later partial update keeps earlier values
    resp = client.put("/user/settings", headers=headers, json={"sex": "female", "OS": "ios"})
    assert resp.json() == {**expected, "sex": "female", "OS": "ios"}
    assert client.get("/user/settings", headers=headers).json() == {**expected, "sex": "female", "OS": "ios"}


def test_missing_fields_in_stored_settings_get_defaults(client, db, new_user):
    user, headers = new_user()
    from bson import ObjectId

    db["users"].update_one({"_id": ObjectId(user["id"])},
                           {"$set": {"settings": {"language": "spanish", "legacy_field": 1}}})
    assert client.get("/user/settings", headers=headers).json() == {**DEFAULTS, "language": "spanish"}


@pytest.mark.parametrize("body", [
    {"language": "french"},
    {"voice_similarity": 1.5},
    {"stability": -0.1},
    {"background_volume": "loud"},
    {"add_background_sound": "maybe"},
    {"OS": "windows"},
    {"sex": "robot"},
    {"voice_note_date": "yesterday"},
    {"voice_note_name": "x" * 81},
    {"unknown_setting": True},
    {"language": None},
])
def test_invalid_settings_refused_and_nothing_written(client, new_user, body):
    _, headers = new_user()
    resp = client.put("/user/settings", headers=headers, json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"] == "VALIDATION_ERROR"
    assert client.get("/user/settings", headers=headers).json() == DEFAULTS


def test_settings_need_auth(client):
    assert client.get("/user/settings").status_code == 401
    assert client.put("/user/settings", json={"language": "spanish"}).status_code == 401
