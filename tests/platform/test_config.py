"""Settings: every field documented in .env.example, production refuses unsafe values."""

from __future__ import annotations

import pytest
from dotenv import dotenv_values
from pydantic import ValidationError

from shared.config import DEV_JWT_SECRET, Settings
from tests.conftest import REPO

PROD_OK = {"app_env": "production", "jwt_secret": "p" * 40, "mongo_url": "mongodb://db:27017",
           "redis_url": "redis://cache:6379/0", "metrics_token": "m" * 24}


def test_env_example_lists_every_setting_with_its_default():
    example = dotenv_values(REPO / ".env.example")
    fields = {name.upper() for name in Settings.model_fields}
    assert set(example) == fields, (set(example) ^ fields)
    loaded = Settings(_env_file=str(REPO / ".env.example"))
    defaults = Settings(_env_file=None)
    for name in Settings.model_fields:
        assert getattr(loaded, name) == getattr(defaults, name), name


def test_production_accepts_safe_settings():
    settings = Settings(_env_file=None, **PROD_OK)
    assert settings.is_production and settings.problems_for("api") == []


@pytest.mark.parametrize("override, complaint", [
    ({"mongo_url": ""}, "MONGO_URL"),
    ({"redis_url": ""}, "REDIS_URL"),
])
def test_production_refuses_what_every_process_needs(override, complaint):
    with pytest.raises(ValidationError) as info:
        Settings(_env_file=None, **{**PROD_OK, **override})
    assert complaint in str(info.value)


@pytest.mark.parametrize("override, complaint", [
    ({"jwt_secret": DEV_JWT_SECRET}, "JWT_SECRET"),
    ({"jwt_secret": "short-secret"}, "JWT_SECRET"),
    ({"metrics_token": ""}, "METRICS_TOKEN"),
])
def test_the_api_in_production_needs_its_secrets_and_a_worker_does_not(override, complaint):
    settings = Settings(_env_file=None, **{**PROD_OK, **override})
    assert any(complaint in p for p in settings.problems_for("api"))
    assert settings.problems_for("worker") == []


def test_production_refusal_stops_the_api_process(tmp_path):
    import subprocess
    import sys

    env = {"APP_ENV": "production", "PATH": "/usr/bin:/bin", "REDIS_URL": "redis://x:1/0",
           "MONGO_URL": "mongodb://x:1"}
    proc = subprocess.run([sys.executable, "-c", "import api.main as m; m.app"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "JWT_SECRET" in proc.stderr and "METRICS_TOKEN" in proc.stderr


def test_a_production_worker_host_runs_without_the_jwt_secret(base_env, tmp_path):
    """What the deploy guide says: worker hosts get the stores and provider keys, never the
    API's secrets."""
    import redis

    from tests.conftest import Workers, process_env, wait_ready

    own_broker = base_env["REDIS_URL"].rsplit("/", 1)[0] + "/8"  # only this worker consumes here
    env = process_env(base_env, APP_ENV="production", REDIS_URL=own_broker)
    env.pop("JWT_SECRET", None)
    env.pop("METRICS_TOKEN", None)
    pool = Workers(env, tmp_path)
    pool.start("prod-worker", ("cleanup",), concurrency=1)
    try:
        wait_ready(redis.Redis.from_url(own_broker, decode_responses=True), ("cleanup",), timeout_s=60)
    finally:
        pool.stop_all()


def test_providers_default_to_local_without_keys():
    s = Settings(_env_file=None)
    assert (s.effective_voice_provider, s.effective_text_provider) == ("local", "local")
    s = Settings(_env_file=None, eleven_labs_api_key="k", gemini_api_key="g")
    assert (s.effective_voice_provider, s.effective_text_provider) == ("elevenlabs", "gemini")


def test_the_vendor_named_pool_settings_still_work(monkeypatch):
    # renamed for the pool (POOL_*); a deployment that still sets ELEVEN_LABS_POOL_* keeps its values
    monkeypatch.setenv("ELEVEN_LABS_POOL_CAPACITY", "7")
    monkeypatch.setenv("ELEVEN_LABS_POOL_EVICTION_STRATEGY", "ttl")
    settings = Settings(_env_file=None)
    assert settings.pool_capacity == 7 and settings.pool_eviction_strategy == "ttl"
    monkeypatch.setenv("POOL_CAPACITY", "5")
    monkeypatch.delenv("ELEVEN_LABS_POOL_CAPACITY")
    assert Settings(_env_file=None).pool_capacity == 5
