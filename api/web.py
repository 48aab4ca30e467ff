"""The web app (the top-level `web/` folder): its page at `/`, its files under `/web/`.

Plain ES modules and CSS, served as they are in the repository: there is no build step, so
what is reviewed is what runs. Only files inside `web/` with a known type are served; the
Content-Security-Policy for these paths is `WEB_CSP` (api/security.py).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse

from api.security import WEB_PREFIX
from shared.errors import NotFound

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# The files change with every deploy and are small: browsers revalidate (ETag) instead of
# running yesterday's script against today's API.
_REVALIDATE = {"Cache-Control": "no-cache"}


def _web_file(name: str) -> Path:
    path = (WEB_DIR / name).resolve()
    if not path.is_relative_to(WEB_DIR) or path.suffix not in MEDIA_TYPES or not path.is_file():
        raise NotFound("No such file of the web app.", action="Open the app at /.")
    return path


def install(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def web_app() -> FileResponse:
        return FileResponse(_web_file("index.html"), media_type=MEDIA_TYPES[".html"], headers=_REVALIDATE)

    @app.get(WEB_PREFIX + "/{name:path}", include_in_schema=False)
    async def web_asset(name: str) -> FileResponse:
        path = _web_file(name)
        return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=_REVALIDATE)
