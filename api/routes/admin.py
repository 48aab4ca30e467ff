from fastapi import APIRouter, Query, Request, Response

from api.deps import ADMIN, AdminUser, Db, Jobs, Redis, SettingsDep
from api.job_schemas import JobAccepted
from api.openapi import LOCATION, error_responses
from api.responses import accepted
from shared.errors import ValidationFailed
from shared.pool.schemas import PoolStatus
from shared.users import codes
from shared.users.schemas import ActivationCodes

router = APIRouter(prefix="/admin", tags=["admin"])
_STARTS_A_JOB = {202: {"headers": LOCATION}, **error_responses(ADMIN)}


@router.post("/activation-codes", name="activation-codes-create", status_code=201,
             responses=error_responses(ADMIN, ValidationFailed))
def create_activation_codes(admin: AdminUser, db: Db, settings: SettingsDep,
                            count: int = Query(1, ge=1, le=500)) -> ActivationCodes:
    """Create single-use activation codes to hand out."""
    return ActivationCodes(codes=codes.create_codes(db, count, settings.activation_code_ttl_days,
                                                    created_by=admin.id))


@router.post("/diagnostics", name="diagnostics-run", status_code=202, responses=_STARTS_A_JOB)
def run_diagnostics(admin: AdminUser, jobs: Jobs, request: Request, response: Response) -> JobAccepted:
    """Run a diagnostic job through the maintenance queue: checks stores and providers from a
    worker's point of view and reports each stage live (poll or SSE)."""
    view, _ = jobs.submit(kind="diagnostic", user_id=admin.id)
    return accepted(request, response, view)


@router.get("/voice-pool/status", name="voice-pool-status", responses=error_responses(ADMIN))
def voice_pool_status(admin: AdminUser, db: Db, r: Redis, settings: SettingsDep) -> PoolStatus:
    """Capacity, voices by state, the LRU (most recent first) with last use and leases,
    creations, reuses, evictions, reuse ratio, pending and failed deletions."""
    from shared.pool.service import VoicePool
    from shared.pool.status import pool_status
    from shared.providers.factory import voice_provider

    return pool_status(VoicePool(db, r, voice_provider(settings, db), settings))


@router.post("/reconcile", name="reconcile-run", status_code=202, responses=_STARTS_A_JOB)
def run_reconcile(admin: AdminUser, jobs: Jobs, request: Request, response: Response) -> JobAccepted:
    """Reconcile provider voices with our records now (a job on the maintenance queue)."""
    view, _ = jobs.submit(kind="reconcile", user_id=admin.id)
    return accepted(request, response, view)
