"""Rate limits and HTTP hardening, against real Redis and the API over real HTTP."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import uvicorn

from tests.fakes.server import free_port


@contextlib.contextmanager
def serve_without_proxy_headers(app) -> Iterator[str]:
    """Like tests.fakes.server.serve, but with uvicorn's own X-Forwarded-For handling off
    (it trusts 127.0.0.1 by default), so the app's TRUSTED_PROXIES logic is what is tested."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           proxy_headers=False))
    thread = threading.Thread(target=server.run, name=f"security-api-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"API on port {port} did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
