"""Request id and one access-log line per request, as pure ASGI (safe for streaming/SSE)."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.routing import Match

from shared import metrics
from shared.logs import request_id_var

log = logging.getLogger("api.access")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestContextMiddleware:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(rid)
        started = time.perf_counter()
        status = {"code": 500}

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            duration_s = time.perf_counter() - started
            log.info("request", extra={
                "method": scope.get("method"),
                "path": scope.get("path"),
                "route": getattr(route, "path", None),
                "status": status["code"],
                "duration_ms": round(duration_s * 1000, 2),
            })
            template = _route_template(scope)
            if template != "/metrics":  # scrapes would drown the traffic they measure
                metrics.observe_http(scope.get("method", ""), template, status["code"], duration_s)
            request_id_var.reset(token)


def _route_template(scope) -> str:
    """The matched route's path template (`/jobs/{job_id}`), never the raw path: a label per
    distinct URL would grow without bound. Requests answered before routing (a 413 from the
    body-size limit) are matched here; what matches no route at all shares one label."""
    route = scope.get("route")
    if route is None and scope.get("app") is not None:
        for candidate in getattr(scope["app"], "routes", ()):
            match, _ = candidate.matches(scope)
            if match != Match.NONE:  # PARTIAL: the path exists but not for this method (405)
                route = candidate
                break
    return getattr(route, "path", None) or metrics.UNMATCHED_ROUTE


class BodySizeLimitMiddleware:
    """Refuse bodies over the limit before they are read: by Content-Length at once, and by
    counting for chunked uploads. Upload routes get their own (larger) limit and error code."""

    def __init__(self, app, default_limit: int, route_limits: dict[str, tuple[int, type]] | None = None) -> None:
        self.app = app
        self.default_limit = default_limit
        self.route_limits = route_limits or {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE"):
            return await self.app(scope, receive, send)
        from shared.errors import PayloadTooLarge

        limit, error_cls = self.route_limits.get(scope.get("path", ""), (self.default_limit, PayloadTooLarge))
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await self._refuse(send, error_cls, limit)
        received = 0
        refused = False

        async def guarded_send(message):
            # once we answered 413 ourselves, whatever the app answers is dropped
            if not refused:
                await send(message)

        async def counting_receive():
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Answer now, from here: an exception raised into the app would be turned
                    # into a 400 by the framework's body parsing.
                    await self._refuse(send, error_cls, limit)
                    refused = True
                    return {"type": "http.disconnect"}
            return message

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not refused:
                raise

    @staticmethod
    async def _refuse(send, error_cls, limit: int) -> None:
        import json

        err = error_cls(f"The request body is larger than the {limit / 1e6:.1f} MB limit.")
        body = json.dumps(err.to_dict()).encode()
        await send({"type": "http.response.start", "status": err.status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
