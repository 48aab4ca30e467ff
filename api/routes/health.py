from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import Db, Redis, SettingsDep
from shared.errors import ServiceUnavailable
from shared.jobs.canary import probe_queues
from shared.quota.costs import cost_factor
from shared.stores import STORE_DOWN_ERRORS
from shared.version import __version__

router = APIRouter(prefix="/health", tags=["health"])


@router.get("")
def health(settings: SettingsDep) -> dict:
    """Liveness: the process answers. Also names the configured providers and voice model."""
    voice = settings.effective_voice_provider
    model = settings.eleven_labs_model if voice == "elevenlabs" else "local-espeak"
    return {
        "status": "ok",
        "version": __version__,
        "env": settings.app_env,
        "providers": {"voice": voice, "text": settings.effective_text_provider},
        "voice_model": model,
        "elevenlabs_model": settings.eleven_labs_model,
        "model_cost_factor": cost_factor(model),
        "text_model": settings.gemini_model if settings.effective_text_provider == "gemini" else "template-v1",
    }


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        check()
    except STORE_DOWN_ERRORS as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}


@router.get("/ready", responses={503: {"description": "Some part is not ready; the body names it"}})
def ready(db: Db, r: Redis, settings: SettingsDep):
    """Readiness: MongoDB and Redis answer, and every queue's workers consume a canary task."""
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
        return JSONResponse({**err.to_dict(), "checks": checks}, status_code=503)
    return {"status": "ready", "checks": checks}
