"""`newvisions demo` (what `make demo` runs): a whole user journey against the stack.

Registers a user, uploads a sample, waits for the clone, performs one routine following the
job over SSE, saves the MP3 under ./out/ and prints its duration, loudness and the characters
charged. Uses the running `make run` stack, or starts one for the occasion (and stops it)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import uuid
from pathlib import Path

import httpx
import typer

from cli.app import cli
from cli.client import console, fail, follow, out, safe_name
from cli.devstack import DATA_DIR, STACK_ENV, free_port, spawn, stop_process
from cli.http_client import ApiError, Client

#: the repository's own voice recording (fixtures/voice/SOURCES.md); `make demo` runs from the repo root
DEFAULT_SAMPLE = Path("fixtures") / "voice" / "sample_en_49s.mp3"


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health/ready", timeout=15).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def _stack():
    """Yield the API URL of a ready stack, starting one if none is running."""
    from cli.session import stack_api_url

    url = stack_api_url()
    if url and _ready(url):
        console.print(f"Using the running stack at {url}")
        yield url
        return
    port = 8000
    with contextlib.suppress(OSError):
        import socket

        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            port = free_port()  # 8000 is taken by something else
    DATA_DIR.mkdir(exist_ok=True)
    (DATA_DIR / "logs").mkdir(exist_ok=True)
    # a throwaway stack: free ports of its own, and no metrics exporters unless asked for (their
    # fixed ports would collide with a `make run` or another demo on this machine)
    env = {"WORKER_METRICS_PORT": "0", **os.environ, "API_PORT": str(port), "FLOWER_PORT": str(free_port())}
    console.print("Starting the stack for the demo (logs: .data/logs/demo-stack.log) ...")
    proc = spawn([sys.executable, "-m", "cli", "dev", "up"], env=env,
                 log_path=DATA_DIR / "logs" / "demo-stack.log")
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while not _ready(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                console.print("[red]The stack did not come up; see .data/logs/demo-stack.log[/]")
                raise typer.Exit(1)
            time.sleep(1)
        yield url
    finally:
        console.print("Stopping the demo stack ...")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        stop_process(proc, grace_s=60)


def _activation_code() -> str:
    from shared.config import Settings
    from shared.stores import mongo_db
    from shared.users.codes import create_codes

    settings = Settings()  # fresh: reads the stack.env written by the stack we just found
    if not settings.mongo_url:
        console.print(f"[red]No MONGO_URL and no {STACK_ENV}; is the stack running?[/]")
        raise typer.Exit(1)
    return create_codes(mongo_db(settings), 1, 1, created_by="demo")[0]


def _measure(mp3: bytes) -> tuple[float, float | None]:
    from shared.audio.codec import decode_to_mono
    from shared.audio.loudness import integrated_loudness

    pcm = decode_to_mono(mp3, 44100)
    return len(pcm) / 44100, integrated_loudness(pcm, 44100)


@cli.command()
def demo(sample: Path = typer.Option(DEFAULT_SAMPLE, "--sample", exists=True, dir_okay=False,
                                     help="Voice sample to clone"),
         routine: str = typer.Option("morning_motivation", "--routine"),
         topic: str = typer.Option("a calm and focused day", "--topic"),
         out_dir: Path = typer.Option(Path("out"), "--out")) -> None:
    """Register, clone a voice, perform a note and save it under ./out/ (offline on local providers)."""
    started = time.monotonic()
    with _stack() as url, Client(url, timeout_s=120) as c:
        try:
            name = f"demo_{uuid.uuid4().hex[:8]}"
            password = uuid.uuid4().hex
            c.register(name, f"{name}@example.com", password, _activation_code())
            c.login(name, password)
            console.print(f"Registered [bold]{name}[/]; uploading {sample} ...")
            clone = follow(c, c.upload_sample(sample)["job_id"], "clone")
            quality = clone["result"]["quality"]
            console.print(f"Voice {clone['result']['action']}: {quality['speech_s']:.1f} s of speech, "
                          f"loudness {quality['loudness_after_lufs']:.1f} LUFS")
            accepted = c.perform(routine, topic)
            job = follow(c, accepted["job_id"], "perform")
            result = job["result"]
            path = out_dir / f"{safe_name(result['title'])}-{result['recording_id']}.mp3"
            c.download(result["recording_id"], path)
        except ApiError as err:
            raise fail(err) from None
    duration, loudness = _measure(path.read_bytes())
    out.print(f"\n[bold green]Voice note saved:[/] {path}")
    out.print(f"  duration   {duration:.1f} s")
    out.print(f"  loudness   {loudness:.1f} LUFS" if loudness is not None else "  loudness   n/a")
    out.print(f"  characters {result['chars']['effective']} charged "
              f"({result['charCount']} / {result['monthlyLimit']} this month)")
    out.print(f"  text       {result['text']}")
    out.print(f"  took       {time.monotonic() - started:.0f} s")
