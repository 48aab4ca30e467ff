"""`newvisions dev up` (what `make run` runs): everything comes up, reaches readiness, shows the
four queues in Flower behind auth, and stops without leaving a process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from cli.devstack import free_port


@pytest.fixture()
def stack_dir(tmp_path):
    return tmp_path


def test_dev_up_ready_flower_and_clean_stop(stack_dir):
    api_port, flower_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGO_", "REDIS_", "FLOWER_"))}
    env.update({"API_PORT": str(api_port), "FLOWER_PORT": str(flower_port),
                "FLOWER_BASIC_AUTH": "ops:letmein-please", "PYTHONPATH": str(Path.cwd()),
                "POOL_CAPACITY": "2", "READINESS_TIMEOUT_S": "5"})
    exe = str(Path(sys.executable).parent / "newvisions")
    log = open(stack_dir / "stack.log", "wb")
    proc = subprocess.Popen([exe, "dev", "up"], cwd=stack_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    api = f"http://127.0.0.1:{api_port}"
    try:
        deadline = time.monotonic() + 120
        ready = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, (stack_dir / "stack.log").read_text()
            try:
                ready = httpx.get(f"{api}/health/ready", timeout=10)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        assert ready is not None and ready.status_code == 200, (stack_dir / "stack.log").read_text()

        stack_env = (stack_dir / ".data" / "stack.env").read_text()
        assert "REDIS_URL=redis://127.0.0.1:" in stack_env and "MONGO_URL=mongodb://127.0.0.1:" in stack_env

        flower = f"http://127.0.0.1:{flower_port}"
        assert httpx.get(f"{flower}/api/workers", timeout=10).status_code == 401
        queues: set[str] = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(queues) < 4:
            resp = httpx.get(f"{flower}/api/workers", params={"refresh": "true"},
                             auth=("ops", "letmein-please"), timeout=20)
            assert resp.status_code == 200
            queues = {q["name"] for w in resp.json().values() for q in (w.get("active_queues") or [])}
            time.sleep(1)
        assert queues == {"clone", "perform", "cleanup", "maintenance"}

        _three_users_share_two_slots(api, stack_dir, exe, env)

        # settings from the environment reach the workers
        worker_env = [p for p in psutil.Process(proc.pid).children(recursive=True)
                      if "worker" in " ".join(p.cmdline())]
        assert worker_env and all(p.environ().get("POOL_CAPACITY") == "2" for p in worker_env[:4])

        descendants = psutil.Process(proc.pid).children(recursive=True)
        assert len(descendants) >= 8  # redis, mongo, api, 4 workers, beat, flower (+ pool children)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=90) == 0
        gone, alive = psutil.wait_procs(descendants, timeout=10)
        assert not alive, [p.cmdline() for p in alive]
        assert not (stack_dir / ".data" / "stack.env").exists()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for child in psutil.Process().children(recursive=True):
            if child.pid != os.getpid() and "dev up" in " ".join(child.cmdline()):
                child.kill()


def _three_users_share_two_slots(api: str, stack_dir: Path, exe: str, env: dict) -> None:
    """With POOL_CAPACITY=2, three users with voices can each perform; the pool
    keeps at most two voices warm and shows the evictions."""
    from cli.http_client import Client
    from tests.conftest import SAMPLE

    codes = subprocess.run([exe, "codes", "create", "--count", "3"], cwd=stack_dir, env=env, capture_output=True,
                           text=True, timeout=60)
    assert codes.returncode == 0, codes.stderr
    clients = []
    for i, code in enumerate(codes.stdout.split()):
        c = Client(api, timeout_s=120)
        c.register(f"pool_user_{i}", f"pool{i}@example.com", "a long password", code)
        c.login(f"pool_user_{i}", "a long password")
        clone = c.wait(c.upload_sample(SAMPLE)["job_id"], timeout_s=180)
        assert clone["state"] == "succeeded", clone["error"]
        clients.append(c)
    for c in clients:
        job = c.wait(c.perform("gratitude", "a quiet evening")["job_id"], timeout_s=180)
        assert job["state"] == "succeeded", job["error"]
    grant = subprocess.run([exe, "admin", "grant", "pool_user_0"], cwd=stack_dir, env=env, capture_output=True,
                           text=True, timeout=60)
    assert grant.returncode == 0, grant.stderr
    status = clients[0].json("GET", "/admin/voice-pool/status")
    assert status["capacity"]["effective"] == 2
    assert status["warm"] <= 2 and status["evictions"] >= 1
    for c in clients:
        c.close()


@pytest.mark.parametrize("setting", ["API_PORT", "FLOWER_PORT"])
def test_dev_up_on_a_busy_port_says_which_and_starts_nothing(stack_dir, setting):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        ports = {"API_PORT": str(free_port()), "FLOWER_PORT": str(free_port()), setting: str(busy)}
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGO_", "REDIS_", "FLOWER_"))}
        env.update({**ports, "PYTHONPATH": str(Path.cwd()), "WORKER_METRICS_PORT": "0"})
        exe = str(Path(sys.executable).parent / "newvisions")
        done = subprocess.run([exe, "dev", "up"], cwd=stack_dir, env=env, capture_output=True, text=True,
                              timeout=60)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert f"port {busy} ({setting}) is already in use" in output and f"{setting}=" in output
    assert "Traceback" not in output and "started" not in output
    assert not (stack_dir / ".data" / "redis").exists() and not (stack_dir / ".data" / "mongo").exists()
