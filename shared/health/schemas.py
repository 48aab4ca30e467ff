"""Public shapes of `GET /health` (liveness) and `GET /health/ready` (readiness)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.errors import ErrorBody


class Providers(BaseModel):
    voice: str = Field(description="The voice provider in use: `elevenlabs`, or `local` offline.", examples=["local"])
    text: str = Field(description="The text provider in use: `gemini`, or `local` offline.", examples=["local"])


class Health(BaseModel):
    """The process answers; what it is configured to use."""

    status: Literal["ok"] = "ok"
    version: str = Field(description="The API version (the same as the schema's `info.version`).", examples=["0.1.0"])
    env: Literal["development", "test", "production"] = Field(description="APP_ENV of this process.")
    providers: Providers
    voice_model: str = Field(description="The voice model notes are spoken with.", examples=["eleven_flash_v2_5"])
    elevenlabs_model: str = Field(description="The ElevenLabs model configured (used when the provider is ElevenLabs).")
    model_cost_factor: float = Field(description="Effective characters charged per character spoken with `voice_model`.",
                                     examples=[0.5])
    text_model: str = Field(description="The model that writes the notes (`template-v1` for the local composer).")


class Check(BaseModel):
    """One dependency's answer. Only the fields that apply are sent."""

    ok: bool
    ms: float | None = Field(None, description="How long it took to answer, when it did.")
    worker: str | None = Field(None, description="The worker that answered a queue's canary.")
    error: str | None = Field(None, description="Why it is not ready, when it is not.")


class ReadinessChecks(BaseModel):
    mongo: Check
    redis: Check
    queues: dict[str, Check] | Check = Field(description=(
        "One check per queue (`clone`, `perform`, `cleanup`, `maintenance`): a canary task each queue's "
        "workers must answer. A single failed check when Redis is down and no canary could be sent."))


class Readiness(BaseModel):
    """Everything the service needs answers."""

    status: Literal["ready"] = "ready"
    checks: ReadinessChecks


class NotReady(ErrorBody):
    """`SERVICE_UNAVAILABLE`, with every check so an operator sees which part is missing."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "error": "SERVICE_UNAVAILABLE", "message": "Not ready: queue:perform.",
        "action": "Start the missing workers or services; see /health/ready details.",
        "checks": {"mongo": {"ok": True, "ms": 1.2}, "redis": {"ok": True, "ms": 0.3},
                   "queues": {"clone": {"ok": True, "worker": "all@host", "ms": 40.1},
                              "perform": {"ok": False, "error": "no worker answered in time"}}}}]})

    checks: ReadinessChecks
