"""HTTP hardening: security headers on every response, CORS from settings, the client's IP.

The API answers JSON (and MP3 audio), never HTML except the web app and the interactive docs,
so everything gets a Content-Security-Policy that allows nothing (`default-src 'none'`); the
web app gets one that allows its own files only, and the docs pages get a policy that lets Swagger UI and ReDoc load their bundles, from this origin only (api/docs.py
serves them; nothing comes from a CDN, so the docs work offline).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from starlette.middleware.cors import CORSMiddleware

from api.docs import DOCS_URL, REDOC_URL
from shared.config import Settings
from shared.errors import CrossSiteRequest

#: where api/web.py serves the web app's files (the page itself is at /)
WEB_PREFIX = "/web"
#: Sec-Fetch-Site values of a request this origin's own pages (or the user, typing) started
_OWN_SITE = {"same-origin", "none"}

_ALWAYS = "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

API_CSP = f"default-src 'none'; {_ALWAYS}"
# Scripts only from this origin, never inline. Swagger UI and ReDoc (styled-components) insert
# <style> elements at run time, so styles keep 'unsafe-inline' (styles cannot run code); both
# fetch /openapi.json; ReDoc runs its search in a blob: worker; icons are data: URIs.
DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            f"font-src 'self'; connect-src 'self'; worker-src 'self' blob:; {_ALWAYS}")
# The web app (web/, served at / by api/web.py): its own scripts and styles only, never inline;
# recordings play from blob: (listen back before upload) and from this origin; the level meter
# needs no worker. `connect-src 'self'` keeps fetch and EventSource on this origin.
WEB_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
           "media-src 'self' blob:; connect-src 'self'; manifest-src 'self'; "
           "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
HSTS = "max-age=31536000; includeSubDomains"

CORS_ALLOW_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "Range", "X-Request-ID"]
CORS_EXPOSE_HEADERS = ["Retry-After", "X-Request-ID", "Location", "Content-Range"]


def _csp_for(path: str, docs_url: str | None, redoc_url: str | None) -> str:
    if path == "/" or path.startswith(WEB_PREFIX + "/"):
        return WEB_CSP
    if (docs_url and (path == docs_url or path.startswith(docs_url + "/"))) or (redoc_url and path == redoc_url):
        return DOCS_CSP
    return API_CSP


class SecurityHeadersMiddleware:
    """Pure ASGI (safe for streaming and SSE). A header a route set itself is kept."""

    def __init__(self, app, *, hsts: bool, docs_url: str | None = "/docs", redoc_url: str | None = "/redoc") -> None:
        self.app = app
        self.hsts = hsts
        self.docs_url, self.redoc_url = docs_url, redoc_url

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"content-security-policy", _csp_for(scope.get("path", ""), self.docs_url, self.redoc_url).encode()),
        ]
        if self.hsts:  # only in production: browsers remember it for a year, so never on a dev host
            headers.append((b"strict-transport-security", HSTS.encode()))

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (name, value) for name, value in headers if name not in present]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI, settings: Settings) -> None:
    """Add the headers middleware and, when CORS_ORIGINS lists origins, CORS. Call it after
    adding the body-size limit, so these wrap it (a 413 carries the security and CORS headers;
    without CORS headers a browser hides the error from the page), and before the request
    context middleware, so preflights are still logged with a request id."""
    origins = settings.cors_origin_list
    if origins:
        # Only the web app served from this origin uses the session cookie; other origins call
        # with bearer tokens, so credentials stay off.
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_credentials=False,
                           allow_methods=["GET", "POST", "PUT", "DELETE"], allow_headers=CORS_ALLOW_HEADERS,
                           expose_headers=CORS_EXPOSE_HEADERS, max_age=600)
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.is_production,
                       docs_url=DOCS_URL, redoc_url=REDOC_URL)


def _own_origin(request: Request, settings: Settings) -> str:
    if settings.public_base_url:
        parts = urlsplit(settings.public_base_url)
        return f"{parts.scheme}://{parts.netloc}".lower()
    return f"{request.url.scheme}://{request.headers.get('host', '')}".lower()


def require_same_origin(request: Request, settings: Settings) -> None:
    """Refuse (403 CROSS_SITE_REQUEST) a request another site's page made the browser send.
    Browsers mark every request with Sec-Fetch-Site and every non-GET one with Origin, and a
    page cannot forge either; a client that sends neither is no browser and so carries no
    cookie a victim's browser attached. Behind a TLS proxy set PUBLIC_BASE_URL: the origin is
    then compared with it, not with what the proxy forwarded."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site.lower() not in _OWN_SITE:
        raise CrossSiteRequest(f"This request came from another site ({site}); it is refused.")
    origin = request.headers.get("origin")
    if origin is not None and origin.rstrip("/").lower() != _own_origin(request, settings):
        raise CrossSiteRequest("This request came from another origin; it is refused.")


def client_ip(request: Request, settings: Settings) -> str:
    """The socket peer, unless the peer is a trusted proxy: then the right-most address in
    X-Forwarded-For that is not itself a trusted proxy (left-most entries are client-supplied
    and can be forged; only what our own proxies appended is believed)."""
    peer = request.client.host if request.client else "unknown"
    trusted = settings.trusted_proxy_networks
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    forwarded = ",".join(request.headers.getlist("x-forwarded-for"))
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop if _is_ip(hop) else peer
    return hops[0] if hops and _is_ip(hops[0]) else peer


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def _is_trusted(value: str, networks) -> bool:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return any(address in network for network in networks)
