"""FastAPI application factory. `uvicorn api.main:app` serves settings from the environment."""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import docs, errors, security, web
from api.job_events import JobEventHub, StreamSlots
from api.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from api.openapi import operation_id
from api.routes import admin, auth, health, jobs, metrics, perform, recordings, users, voice
from api.routes.jobs import HEARTBEAT_S
from shared.bootstrap import ensure_indexes_with_retry
from shared.config import Settings, get_settings
from shared.logs import configure_logging
from shared.stores import async_redis_client, redis_command_timeout_s
from shared.users.recent import RecentUsers
from shared.version import __version__

log = logging.getLogger("api")
#: JSON bodies are small; anything bigger is a mistake or an attack
JSON_BODY_LIMIT = 64 * 1024
#: multipart framing around an uploaded file (boundaries, part headers)
UPLOAD_OVERHEAD = 64 * 1024


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.require_for("api")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Indexes are created in the background: the API must come up (and answer 503) even
        # while MongoDB is still starting or down.
        stop = threading.Event()
        threading.Thread(target=ensure_indexes_with_retry, args=(settings, stop),
                         name="ensure-indexes", daemon=True).start()
        app.state.aredis = async_redis_client(settings)
        app.state.job_events = JobEventHub(app.state.aredis, decode=jobs.published,
                                          confirm_timeout_s=redis_command_timeout_s(settings))
        app.state.job_events.start()
        app.state.stream_slots = StreamSlots(app.state.aredis, settings.sse_streams_per_user,
                                             lease_s=3 * HEARTBEAT_S)
        log.info("api started", extra={"version": __version__, "env": settings.app_env})
        yield
        stop.set()
        await app.state.job_events.stop()
        await app.state.aredis.aclose()

    app = FastAPI(
        title="New Visions API",
        version=__version__,
        description=("Voice notes in your own cloned voice. Every error is `{error, message, action}` "
                     "(the `ErrorBody` schema). Slow work runs as jobs: follow them by SSE or by polling."),
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        docs_url=None, redoc_url=None,  # served from the project itself, offline (api/docs.py)
    )
    app.state.settings = settings
    app.state.recent_users = RecentUsers()
    errors.install(app)
    docs.install(app)
    web.install(app)
    for module in (auth, users, voice, perform, recordings, jobs, health, admin, metrics):
        app.include_router(module.router)
    from shared.errors import SampleTooLarge

    app.add_middleware(BodySizeLimitMiddleware, default_limit=JSON_BODY_LIMIT,
                       route_limits={"/user/voice": (settings.sample_max_bytes + UPLOAD_OVERHEAD, SampleTooLarge)})
    # The last added runs first: request context (id, access log) → security headers → CORS →
    # body-size limit → routes; so even a 413 or a preflight gets headers and a log line.
    security.install(app, settings)
    app.add_middleware(RequestContextMiddleware)
    return app


def _app_from_env() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_level)
    return create_app(settings)


def __getattr__(name: str):
    # `uvicorn api.main:app` builds the app on first access, not at import (tests import
    # create_app without a configured environment).
    if name == "app":
        globals()["app"] = value = _app_from_env()
        return value
    raise AttributeError(name)
