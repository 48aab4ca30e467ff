"""Where the CLI finds the API and keeps its credentials (0600, in the user's config dir)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from cli.devstack import STACK_ENV

DEFAULT_API = "http://127.0.0.1:8000"


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "newvisions"


def credentials_path() -> Path:
    return config_dir() / "credentials.json"


def load_credentials() -> dict:
    try:
        return json.loads(credentials_path().read_text())
    except (FileNotFoundError, ValueError):
        return {}


def device_token(api_url: str, username: str) -> str | None:
    """The device token this client was given at an earlier login to this account."""
    return (load_credentials().get("device_tokens") or {}).get(f"{api_url}|{username.lower()}")


def save_credentials(api_url: str, username: str, token: str, expires_in: int,
                     new_device_token: str | None = None) -> Path:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    devices = load_credentials().get("device_tokens") or {}
    if new_device_token:
        devices[f"{api_url}|{username.lower()}"] = new_device_token
    data = {"api_url": api_url, "username": username, "access_token": token,
            "expires_at": int(time.time()) + int(expires_in), "device_tokens": devices}
    # created with 0600 from the start: the token is never readable by others, not even briefly
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(path.with_suffix(".tmp"), path)
    return path


def stack_api_url() -> str | None:
    try:
        for line in STACK_ENV.read_text().splitlines():
            if line.startswith("API_URL="):
                return line.split("=", 1)[1].strip()
    except FileNotFoundError:
        return None
    return None


def resolve_api_url(explicit: str | None = None) -> str:
    return (explicit or os.environ.get("NV_API_URL") or stack_api_url() or load_credentials().get("api_url")
            or DEFAULT_API).rstrip("/")
