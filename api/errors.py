"""Map every failure to `{error, message, action}` with the right status; never a bare 500 page."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError as BrokerError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.errors import AppError, BadRequest, ServiceUnavailable, ValidationFailed
from shared.stores import STORE_DOWN_ERRORS

log = logging.getLogger("api.errors")

_HTTP_CODES = {
    400: (BadRequest.code, BadRequest.default_action),
    401: ("AUTH_REQUIRED", "Log in and send a bearer token."),
    403: ("FORBIDDEN", "Ask an administrator for access."),
    404: ("NOT_FOUND", "Check the URL."),
    405: ("METHOD_NOT_ALLOWED", "Check the HTTP method for this URL."),
    413: ("PAYLOAD_TOO_LARGE", "Send a smaller request body."),
    415: ("UNSUPPORTED_MEDIA_TYPE", "Send JSON (or multipart for uploads)."),
}


def error_response(exc: AppError) -> JSONResponse:
    return JSONResponse(exc.to_dict(), status_code=exc.status, headers=exc.headers or None)


def _describe(errors) -> str:
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",)) or "body"
        if err.get("type") == "json_invalid":
            return "The request body is not valid JSON."
        parts.append(f"{loc}: {err.get('msg')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


def install(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError):
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(_: Request, exc: RequestValidationError):
        return error_response(ValidationFailed(_describe(exc.errors())))

    @app.exception_handler(ValidationError)
    async def _model_invalid(_: Request, exc: ValidationError):
        return error_response(ValidationFailed(_describe(exc.errors())))

    async def _store_down(_: Request, exc: Exception):
        log.warning("store unavailable", extra={"error_type": type(exc).__name__})
        return error_response(ServiceUnavailable("A backing service (database or queue) is unreachable."))

    for exc_type in (*STORE_DOWN_ERRORS, BrokerError):
        app.add_exception_handler(exc_type, _store_down)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        code, action = _HTTP_CODES.get(exc.status_code, ("HTTP_ERROR", "Check the request."))
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ").capitalize()
        return JSONResponse({"error": code, "message": message, "action": action},
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception):
        log.exception("unhandled error")
        return JSONResponse({"error": "INTERNAL_ERROR", "message": "Something went wrong on our side.",
                             "action": "Try again; if it keeps happening, contact support."},
                            status_code=500)
