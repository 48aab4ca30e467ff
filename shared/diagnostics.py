"""A diagnostic job: what a worker sees of its stores and configuration, stage by stage."""

from __future__ import annotations

import platform
import shutil
import time
from collections.abc import Callable

from pydantic import BaseModel, Field
from pymongo.database import Database

from shared.config import Settings
from shared.version import __version__


def _timed_ms(fn) -> float:
    started = time.perf_counter()
    fn()
    return round((time.perf_counter() - started) * 1000, 2)


class DiagnosticResult(BaseModel):
    """The `result` of a succeeded diagnostic job: the worker's view of its stores and tools."""

    version: str
    python: str = Field(examples=["3.12.3"])
    mongo_ping_ms: float
    redis_ping_ms: float
    tools: dict[str, bool] = Field(description="Whether each tool the workers call is installed.",
                                   examples=[{"ffmpeg": True, "ffprobe": True, "espeak-ng": True}])
    voice_provider: str
    text_provider: str


def run_diagnostics(settings: Settings, db: Database, r, progress: Callable[[str, float | None], None]) -> dict:
    progress("checking_mongo", 0.2)
    mongo_ms = _timed_ms(lambda: db.command("ping"))
    progress("checking_redis", 0.5)
    redis_ms = _timed_ms(r.ping)
    progress("checking_tools", 0.8)
    tools = {tool: shutil.which(tool) is not None for tool in ("ffmpeg", "ffprobe", "espeak-ng")}
    return {
        "version": __version__,
        "python": platform.python_version(),
        "mongo_ping_ms": mongo_ms,
        "redis_ping_ms": redis_ms,
        "tools": tools,
        "voice_provider": settings.effective_voice_provider,
        "text_provider": settings.effective_text_provider,
    }
