from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.deps import Db, Redis, SettingsDep
from shared.errors import ServiceUnavailable
from shared.health.schemas import Health, NotReady, Readiness
from shared.jobs.canary import probe_queues
from shared.quota.costs import cost_factor
from shared.stores import STORE_DOWN_ERRORS
from shared.version import __version__

router = APIRouter(prefix="/health", tags=["health"])


@router.get("", name="live")
def health(settings: SettingsDep) -> Health:
    """Liveness: the process answers. Also names the configured providers and voice model."""
    voice = settings.effective_voice_provider
    model = settings.voice_model_id
    return Health.model_validate({
        "status": "ok",
        "version": __version__,
        "env": settings.app_env,
        "providers": {"voice": voice, "text": settings.effective_text_provider},
        "voice_model": model,
        "elevenlabs_model": settings.eleven_labs_model,
        "model_cost_factor": cost_factor(model),
        "text_model": settings.gemini_model if settings.effective_text_provider == "gemini" else "template-v1",
    })


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        check()
    except STORE_DOWN_ERRORS as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}


class ReadinessRounds:
    """At most one readiness round at a time per API process, its answer shared by everyone who
    asks while it runs and reused for `cache_s` seconds: each round sends a canary task to every
    queue, so callers (load balancers, probes, or someone hammering the endpoint) must not
    multiply them. Waiting callers hold no thread, only a place on the lock."""

    def __init__(self, cache_s: float) -> None:
        self.cache_s = cache_s
        self._lock = asyncio.Lock()
        self._answer: tuple[int, Readiness | NotReady] | None = None
        self._at = 0.0

    async def answer(self, run) -> tuple[int, Readiness | NotReady]:
        async with self._lock:
            if self._answer is None or time.monotonic() - self._at >= self.cache_s:
                self._answer = await run_in_threadpool(run)
                self._at = time.monotonic()
            return self._answer


def _readiness(db, r, settings) -> tuple[int, Readiness | NotReady]:
    checks: dict = {"mongo": _timed(lambda: db.command("ping")), "redis": _timed(r.ping)}
    if checks["redis"]["ok"]:
        checks["queues"] = probe_queues(r, settings.readiness_timeout_s, broker_url=settings.celery_broker_url)
    else:
        checks["queues"] = {"ok": False, "error": "redis is down"}
    failing = [name for name in ("mongo", "redis") if not checks[name]["ok"]]
    queues = checks["queues"]
    if "ok" in queues:  # redis down: no per-queue results
        failing.append("queues")
    else:
        failing += [f"queue:{q}" for q, res in queues.items() if not res["ok"]]
    if failing:
        err = ServiceUnavailable(f"Not ready: {', '.join(failing)}.",
                                 action="Start the missing workers or services; see /health/ready details.")
        return 503, NotReady.model_validate({**err.to_dict(), "checks": checks})
    return 200, Readiness.model_validate({"status": "ready", "checks": checks})


@router.get("/ready", name="ready", response_model=Readiness, responses={
    503: {"model": NotReady, "description": "`SERVICE_UNAVAILABLE`: some part is not ready; `checks` names it."}})
async def ready(request: Request, db: Db, r: Redis, settings: SettingsDep) -> JSONResponse:
    """Readiness: MongoDB and Redis answer, and every queue's workers consume a canary task.
    One round per process at a time, reused for READINESS_CACHE_S seconds."""
    state = request.app.state
    if getattr(state, "readiness", None) is None:
        state.readiness = ReadinessRounds(settings.readiness_cache_s)
    status, body = await state.readiness.answer(lambda: _readiness(db, r, settings))
    # the status depends on the answer, so the model is rendered here (only its fields that apply)
    return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=status)
