"""One Settings object, read from the environment (and `.env`), shared by API, workers and CLI.

Every setting has a safe development default so `make run` works offline with nothing set;
production mode (`APP_ENV=production`) refuses the defaults that would be unsafe there.
`.env.example` lists every field below with its default.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me"
QUEUES = ("clone", "perform", "cleanup", "maintenance")
#: a rate limit: "<count>/<window>" with the window in s, m or h ("5/1h" = five per hour)
RATE_SPEC = r"^[1-9][0-9]*/[1-9][0-9]*[smh]$"


class Settings(BaseSettings):
    # `.data/stack.env` is written by the dev runner (`make run`) with the addresses it chose, so
    # that `newvisions` commands run beside the stack reach the same Redis and MongoDB.
    # Real environment variables win over both files.
    model_config = SettingsConfigDict(
        env_file=(".env", ".data/stack.env"), env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # --- runtime ---
    app_env: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_base_url: str = ""  # used to build status/events URLs; empty = relative URLs

    # --- stores ---
    mongo_url: str = ""  # empty in development: the dev runner starts embedded SecantusDB
    mongo_db: str = "newvisions"
    mongo_timeout_ms: int = 3000
    redis_url: str = ""  # empty in development: the dev runner starts its own redis-server
    redis_timeout_s: float = 2.0
    broker_url: str = ""  # Celery broker; empty = REDIS_URL (set amqp://... for RabbitMQ)

    # --- auth ---
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_ttl_minutes: int = Field(60 * 24, ge=1, le=60 * 24 * 30)
    activation_code_ttl_days: int = Field(30, ge=1)

    # --- jobs ---
    job_status_ttl_s: int = Field(7 * 24 * 3600, ge=60)  # Redis mirror of a job's live status
    sse_streams_per_user: int = Field(10, ge=1, le=1000)  # live job streams one user may hold open
    readiness_timeout_s: float = Field(3.0, gt=0, le=30)
    # one readiness round (a canary per queue) per API process is reused this long
    readiness_cache_s: float = Field(5.0, ge=0, le=300)
    result_expires_s: int = Field(24 * 3600, ge=60)
    clone_time_limit_s: int = 300
    perform_time_limit_s: int = 300
    cleanup_time_limit_s: int = 120
    maintenance_time_limit_s: int = 600
    # How long the broker waits for an unacknowledged message (its worker died) before it
    # delivers it again. 0 = the longest hard time limit x 2 + 60 s. Must stay above the longest
    # hard time limit, or a task still running would be delivered a second time.
    broker_visibility_timeout_s: int = Field(0, ge=0)
    # RabbitMQ only: heartbeat of a worker's broker connection. A worker host that vanishes
    # without closing its connection (power, network) is found within about two of these, and
    # its unacknowledged messages go back to the queue; a killed worker process is found at once.
    broker_heartbeat_s: int = Field(10, ge=0, le=600)
    # worker processes per queue (dev runner and compose): clone is CPU-bound DSP,
    # perform mostly waits on providers
    clone_concurrency: int = Field(1, ge=1)
    perform_concurrency: int = Field(8, ge=1)
    cleanup_concurrency: int = Field(2, ge=1)
    maintenance_concurrency: int = Field(1, ge=1)

    # --- flower ---
    flower_port: int = 5555
    flower_basic_auth: str = ""  # "user:password"; the dev runner generates one when empty

    # --- metrics (docs/METRICS.md) ---
    metrics_token: SecretStr = SecretStr("")  # bearer token the API's /metrics requires; empty = open
    worker_metrics_port: int = Field(0, ge=0, le=65535)  # a worker node's exporter port; 0 = none
    worker_metrics_host: str = "127.0.0.1"  # 0.0.0.0 in a container, so Prometheus can reach it

    # --- providers ---
    voice_provider: Literal["auto", "local", "elevenlabs"] = "auto"
    text_provider: Literal["auto", "local", "gemini"] = "auto"
    eleven_labs_api_key: SecretStr = SecretStr("")
    eleven_labs_base_url: str = "https://api.elevenlabs.io"
    eleven_labs_model: str = "eleven_turbo_v2_5"
    # read timeout of one synthesis request (the provider answers once the audio is generated)
    eleven_labs_synthesis_timeout_s: float = Field(120.0, gt=0, le=600)
    gemini_api_key: SecretStr = SecretStr("")
    gemini_base_url: str = ""  # empty = the SDK's default endpoint
    gemini_model: str = "gemini-2.5-flash"
    gemini_timeout_s: float = Field(20.0, gt=0, le=120)
    local_voice_limit: int = Field(10, ge=1)
    # circuit breaker per provider and worker process: open after this many consecutive
    # failures (each after its retries), fail fast, let one trial call through after the reset
    provider_breaker_threshold: int = Field(5, ge=1)
    provider_breaker_reset_s: float = Field(30.0, gt=0, le=3600)

    # --- voice samples ---
    sample_max_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    sample_min_seconds: float = 30.0
    sample_min_speech_seconds: float = 20.0
    sample_max_seconds: float = 180.0
    sample_target_lufs: float = Field(-20.0, ge=-30, le=-14)
    sample_true_peak_dbtp: float = Field(-3.0, le=0)
    #: a new voice whose match score (0-100, docs/VOICE_MATCH.md) is under this is flagged on the
    #: user's voice with "record a new sample in a quiet room". 0, the default, flags nothing: the
    #: offline espeak stand-in always scores far, and a new recording would not change that.
    voice_match_floor: int = Field(0, ge=0, le=100)

    # --- voice notes ---
    note_target_lufs: float = Field(-16.0, ge=-30, le=-9)  # final loudness of a note
    note_true_peak_dbtp: float = Field(-1.5, le=0)
    fan_loop_path: str = ""  # a fan recording to loop under notes; empty = generated brown noise
    synthesis_chunk_chars: int = Field(800, ge=100, le=5000)  # long texts are spoken in chunks

    # --- quota ---
    monthly_char_limit: int = Field(4000, ge=0)

    # --- pool ---
    provider_pool_enabled: bool = True
    # named for the pool, whatever the provider; the ELEVEN_LABS_POOL_* names still work (deprecated)
    pool_capacity: int = Field(10, ge=1, validation_alias=AliasChoices("pool_capacity", "eleven_labs_pool_capacity"))
    pool_ttl_minutes: int = Field(30, ge=1, validation_alias=AliasChoices(
        "pool_ttl_minutes", "eleven_labs_pool_ttl_minutes"))
    pool_eviction_strategy: Literal["lru", "ttl"] = Field("lru", validation_alias=AliasChoices(
        "pool_eviction_strategy", "eleven_labs_pool_eviction_strategy"))

    # --- limits and HTTP security (shared/ratelimit.py, api/security.py) ---
    rate_limit_upload: str = Field("5/1h", pattern=RATE_SPEC)  # voice samples per user
    upload_cooldown_s: int = Field(60, ge=0, le=24 * 3600)  # no new sample this soon after a clone succeeded
    rate_limit_perform: str = Field("20/1m", pattern=RATE_SPEC)  # voice notes per user
    # login attempts per address, of clients without a device token (shared/users/login_guard.py)
    rate_limit_login_ip: str = Field("20/5m", pattern=RATE_SPEC)
    # consecutive failed logins per account and client before that client waits (the wait is
    # the window, doubled with every further failure); the owner's other clients are not held
    rate_limit_login_user: str = Field("5/5m", pattern=RATE_SPEC)
    # login attempts per account from clients without a device token (guessing spread over
    # many addresses); clients that logged in before are never held back by it
    rate_limit_login_account: str = Field("30/1h", pattern=RATE_SPEC)
    rate_limit_register_ip: str = Field("10/1h", pattern=RATE_SPEC)  # registrations per client IP
    # proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-For names the client; empty =
    # the socket peer is the client and X-Forwarded-For is ignored (it is trivially forged)
    trusted_proxies: str = ""
    cors_origins: str = ""  # comma-separated origins allowed to call the API from a browser; empty = no CORS

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: str) -> str:
        import ipaddress

        for item in _split(value):
            ipaddress.ip_network(item, strict=False)  # ValueError names the bad entry
        return value

    @property
    def trusted_proxy_networks(self) -> tuple:
        import ipaddress

        return tuple(ipaddress.ip_network(item, strict=False) for item in _split(self.trusted_proxies))

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.rstrip("/") for origin in _split(self.cors_origins)]

    @property
    def celery_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def effective_voice_provider(self) -> str:
        if self.voice_provider != "auto":
            return self.voice_provider
        return "elevenlabs" if self.eleven_labs_api_key.get_secret_value() else "local"

    @property
    def effective_text_provider(self) -> str:
        if self.text_provider != "auto":
            return self.text_provider
        return "gemini" if self.gemini_api_key.get_secret_value() else "local"

    @property
    def voice_model_id(self) -> str:
        """The voice model notes are spoken with, which sets their cost per character."""
        return self.eleven_labs_model if self.effective_voice_provider == "elevenlabs" else "local-espeak"

    def concurrency(self, queue: str) -> int:
        return int(getattr(self, f"{queue}_concurrency"))

    @property
    def longest_time_limit_s(self) -> int:
        return max(self.clone_time_limit_s, self.perform_time_limit_s,
                   self.cleanup_time_limit_s, self.maintenance_time_limit_s)

    @property
    def visibility_timeout_s(self) -> int:
        """The broker's (and result backend's) visibility timeout: see celeryconfig.py."""
        return self.broker_visibility_timeout_s or self.longest_time_limit_s * 2 + 60

    @model_validator(mode="after")
    def _visibility_above_time_limits(self) -> "Settings":
        if self.broker_visibility_timeout_s and self.broker_visibility_timeout_s <= self.longest_time_limit_s:
            raise ValueError(
                f"BROKER_VISIBILITY_TIMEOUT_S ({self.broker_visibility_timeout_s}) must exceed the longest "
                f"task time limit ({self.longest_time_limit_s} s), or running tasks are delivered twice")
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> "Settings":
        """What every process needs in production; what only some need is `problems_for(role)`."""
        if not self.is_production:
            return self
        problems = []
        if not self.mongo_url:
            problems.append("MONGO_URL must be set")
        if not self.redis_url:
            problems.append("REDIS_URL must be set")
        if self.voice_provider == "elevenlabs" and not self.eleven_labs_api_key.get_secret_value():
            problems.append("ELEVEN_LABS_API_KEY must be set when VOICE_PROVIDER=elevenlabs")
        if problems:
            raise ValueError("refusing to start in production: " + "; ".join(problems))
        return self

    def problems_for(self, role: Literal["api", "worker"]) -> list[str]:
        """What this process role lacks to run safely in production (nothing outside it). Only
        the API issues and checks tokens and serves /metrics; a worker host never needs the JWT
        secret or the metrics token."""
        if not self.is_production or role != "api":
            return []
        problems = []
        secret = self.jwt_secret.get_secret_value()
        if secret == DEV_JWT_SECRET or len(secret) < 32:
            problems.append("JWT_SECRET must be set to a random value of at least 32 characters")
        if len(self.metrics_token.get_secret_value()) < 16:
            problems.append("METRICS_TOKEN must be set (16 characters or more): /metrics is otherwise open "
                            "to anyone who can reach the API")
        return problems

    def require_for(self, role: Literal["api", "worker"]) -> None:
        problems = self.problems_for(role)
        if problems:
            raise RuntimeError(f"refusing to start the {role} in production: " + "; ".join(problems))


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
