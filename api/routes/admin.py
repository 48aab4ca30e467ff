from fastapi import APIRouter, Query, Request

from api.deps import AdminUser, Db, Jobs, Redis, SettingsDep
from api.responses import accepted
from shared.users import codes

router = APIRouter(prefix="/admin", tags=["admin"])


@router.post("/activation-codes", status_code=201)
def create_activation_codes(admin: AdminUser, db: Db, settings: SettingsDep,
                            count: int = Query(1, ge=1, le=500)) -> dict:
    """Create single-use activation codes to hand out."""
    return {"codes": codes.create_codes(db, count, settings.activation_code_ttl_days,
                                        created_by=str(admin["_id"]))}


@router.post("/diagnostics", status_code=202)
def run_diagnostics(admin: AdminUser, jobs: Jobs, request: Request):
    """Run a diagnostic job through the maintenance queue: checks stores and providers from a
    worker's point of view and reports each stage live (poll or SSE)."""
    view, _ = jobs.submit(kind="diagnostic", user_id=str(admin["_id"]))
    return accepted(request, view)


@router.get("/voice-pool/status")
def voice_pool_status(admin: AdminUser, db: Db, r: Redis, settings: SettingsDep) -> dict:
    """Capacity, voices by state, the LRU (most recent first) with last use and leases,
    creations, reuses, evictions, reuse ratio, pending and failed deletions."""
    from shared.pool.service import VoicePool
    from shared.pool.status import pool_status
    from shared.providers.factory import voice_provider

    return pool_status(VoicePool(db, r, voice_provider(settings, db), settings))


@router.post("/reconcile", status_code=202)
def run_reconcile(admin: AdminUser, jobs: Jobs, request: Request):
    """Reconcile provider voices with our records now (a job on the maintenance queue)."""
    view, _ = jobs.submit(kind="reconcile", user_id=str(admin["_id"]))
    return accepted(request, view)
