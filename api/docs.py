"""The interactive API docs (Swagger UI at /docs, ReDoc at /redoc), served entirely from here.

The bundles come from the `fastapi-offline` package (it ships Swagger UI and ReDoc builds), so
the docs work without internet; the pages load no inline script (Swagger UI boots from our own
`docs_assets/swagger-init.js`), so their Content-Security-Policy allows scripts from this origin
only (api/security.py).
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse

from shared.errors import NotFound

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs/assets"
_VENDOR = Path(fastapi_offline.__file__).parent / "static"
_OURS = Path(__file__).parent / "docs_assets"
#: every file the pages may load, by name: nothing else under the assets path is served
ASSETS = {
    "swagger-ui-bundle.js": _VENDOR / "swagger-ui-bundle.js",
    "swagger-ui.css": _VENDOR / "swagger-ui.css",
    "redoc.standalone.js": _VENDOR / "redoc.standalone.js",
    "favicon.png": _VENDOR / "favicon.png",
    "swagger-init.js": _OURS / "swagger-init.js",
    "docs.css": _OURS / "docs.css",
}
_MEDIA = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


def _page(title: str, head: str, body: str) -> HTMLResponse:
    return HTMLResponse(f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="icon" href="{ASSETS_URL}/favicon.png">
<link rel="stylesheet" href="{ASSETS_URL}/docs.css">
{head}
</head>
<body>
{body}
</body>
</html>
""")


def install(app: FastAPI) -> None:
    """Add the docs pages and their assets to an app created with docs_url=None, redoc_url=None."""
    spec = escape(app.openapi_url or "/openapi.json")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return _page(f"{app.title} - Swagger UI",
                     f'<link rel="stylesheet" href="{ASSETS_URL}/swagger-ui.css">',
                     f'<div id="swagger-ui" data-spec-url="{spec}"></div>\n'
                     f'<script src="{ASSETS_URL}/swagger-ui-bundle.js"></script>\n'
                     f'<script src="{ASSETS_URL}/swagger-init.js"></script>')

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return _page(f"{app.title} - ReDoc", "",
                     f'<redoc spec-url="{spec}"></redoc>\n'
                     f'<script src="{ASSETS_URL}/redoc.standalone.js"></script>')

    @app.get(ASSETS_URL + "/{name}", include_in_schema=False)
    async def asset(name: str) -> FileResponse:
        path = ASSETS.get(name)
        if path is None:
            raise NotFound("No such docs asset.")
        # the bundles change only with the package version: let browsers keep them a day
        return FileResponse(path, media_type=_MEDIA[path.suffix],
                            headers={"Cache-Control": "public, max-age=86400"})
