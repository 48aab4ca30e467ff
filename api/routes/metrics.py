"""GET /metrics: Prometheus text exposition. Metrics are defined in `shared.metrics`; this only
serves them, optionally behind a bearer token (METRICS_TOKEN; empty = open, as scrapers expect)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import SettingsDep
from shared import metrics
from shared.errors import AuthRequired, TokenInvalid

router = APIRouter(tags=["ops"])
_bearer = HTTPBearer(auto_error=False)
_SCRAPER_ACTION = "Configure the scraper with 'Authorization: Bearer <METRICS_TOKEN>'."


def _require_token(settings: SettingsDep,
                   creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    expected = settings.metrics_token.get_secret_value()
    if not expected:
        return
    if creds is None or not creds.credentials:
        raise AuthRequired("The metrics endpoint needs a bearer token.", action=_SCRAPER_ACTION,
                           headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(creds.credentials.encode(), expected.encode()):
        raise TokenInvalid("The metrics token is wrong.", action=_SCRAPER_ACTION,
                           headers={"WWW-Authenticate": "Bearer"})


# A sync route: the queue-depth collector talks to the broker synchronously, so it runs in the
# threadpool rather than on the event loop.
@router.get("/metrics", include_in_schema=False, dependencies=[Depends(_require_token)])
def prometheus_metrics(request: Request, settings: SettingsDep) -> Response:
    state = request.app.state
    registry = getattr(state, "metrics_registry", None)
    if registry is None:  # one per app: it holds this app's broker client for queue_depth
        registry = state.metrics_registry = metrics.api_registry(settings.celery_broker_url,
                                                                 settings.redis_timeout_s)
    return Response(metrics.exposition(registry), media_type=metrics.CONTENT_TYPE)
