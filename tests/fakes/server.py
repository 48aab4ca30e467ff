"""Serve an ASGI app on a free loopback port from a background thread.

Fake providers run this way in tests so that the real adapters, including those inside
worker processes, talk to them over real HTTP."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve(app, port: int | None = None) -> Iterator[str]:
    """Yield the base URL (http://127.0.0.1:PORT) while the app is served."""
    port = port or free_port()
    # proxy_headers off, as the API runs in production (`--no-proxy-headers`): client addresses
    # behind a proxy are the app's decision (TRUSTED_PROXIES), not uvicorn's
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="auto",
                            proxy_headers=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"fake-server-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"server on port {port} did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
