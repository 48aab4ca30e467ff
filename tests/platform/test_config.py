"""Settings: every field documented in .env.example, production refuses unsafe values."""

from __future__ import annotations

import pytest
from dotenv import dotenv_values
from pydantic import ValidationError

from shared.config import DEV_JWT_SECRET, Settings
from tests.conftest import REPO

PROD_OK = {"app_env": "production", "jwt_secret": "p" * 40, "mongo_url": "mongodb://db:27017",
           "redis_url": "redis://cache:6379/0"}


def test_env_example_lists_every_setting_with_its_default():
    example = dotenv_values(REPO / ".env.example")
    fields = {name.upper() for name in Settings.model_fields}
    assert set(example) == fields, (set(example) ^ fields)
    loaded = Settings(_env_file=str(REPO / ".env.example"))
    defaults = Settings(_env_file=None)
    for name in Settings.model_fields:
        assert getattr(loaded, name) == getattr(defaults, name), name


def test_production_accepts_safe_settings():
    assert Settings(_env_file=None, **PROD_OK).is_production


@pytest.mark.parametrize("override, complaint", [
    ({"jwt_secret": DEV_JWT_SECRET}, "JWT_SECRET"),
    ({"jwt_secret": "short-secret"}, "JWT_SECRET"),
    ({"mongo_url": ""}, "MONGO_URL"),
    ({"redis_url": ""}, "REDIS_URL"),
])
def test_production_refuses_unsafe_settings(override, complaint):
    with pytest.raises(ValidationError) as info:
        Settings(_env_file=None, **{**PROD_OK, **override})
    assert complaint in str(info.value)


def test_production_refusal_stops_the_api_process(tmp_path):
    import subprocess
    import sys

    env = {"APP_ENV": "production", "PATH": "/usr/bin:/bin", "REDIS_URL": "redis://x:1/0",
           "MONGO_URL": "mongodb://x:1"}
    proc = subprocess.run([sys.executable, "-c", "import api.main as m; m.app"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "JWT_SECRET" in proc.stderr


def test_providers_default_to_local_without_keys():
    s = Settings(_env_file=None)
    assert (s.effective_voice_provider, s.effective_text_provider) == ("local", "local")
    s = Settings(_env_file=None, eleven_labs_api_key="k", gemini_api_key="g")
    assert (s.effective_voice_provider, s.effective_text_provider) == ("elevenlabs", "gemini")
