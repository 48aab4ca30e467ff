"""The `newvisions` client commands drive a full journey against the running test stack."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from shared.audio.codec import probe
from tests.conftest import SAMPLE


def run(api_url: str, home: Path, *args: str, input_text: str | None = None) -> subprocess.CompletedProcess:
    exe = str(Path(sys.executable).parent / "newvisions")
    env = {**os.environ, "XDG_CONFIG_HOME": str(home), "NV_API_URL": api_url, "COLUMNS": "200"}
    return subprocess.run([exe, *args], cwd=home, env=env, capture_output=True, text=True, timeout=300,
                          input=input_text)


def test_register_upload_perform_download(api_url, workers, new_user, tmp_path):
    code = new_user.code()
    reg = run(api_url, tmp_path, "register", "--username", "cli_journey", "--email", "cli@example.com",
              "--password", "a long password", "--code", code)
    assert reg.returncode == 0, reg.stderr
    creds = tmp_path / "newvisions" / "credentials.json"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert "a long password" not in creds.read_text()

    login = run(api_url, tmp_path, "login", input_text="cli_journey\na long password\n")
    assert login.returncode == 0, login.stderr
    assert "Logged in as" in login.stderr

    up = run(api_url, tmp_path, "upload", str(SAMPLE))
    assert up.returncode == 0, up.stderr
    assert "Voice created" in up.stdout and "speech_s" in up.stdout and "speaker_consistency" in up.stdout
    assert "voice match: " in up.stdout and "(far)" in up.stdout  # the espeak stand-in is no clone

    perf = run(api_url, tmp_path, "perform", "--routine", "gratitude", "--topic", "my garden", "--wait")
    assert perf.returncode == 0, perf.stderr
    recording_id = perf.stdout.split("recording ", 1)[1].split(":", 1)[0]
    assert "voice match: " in perf.stdout and "(far)" in perf.stdout

    listing = run(api_url, tmp_path, "recordings", "list")
    assert listing.returncode == 0 and recording_id in listing.stdout
    assert "voice match" in listing.stdout and "(far)" in listing.stdout

    dl = run(api_url, tmp_path, "recordings", "download", recording_id, "--to", str(tmp_path / "notes"))
    assert dl.returncode == 0, dl.stderr
    mp3 = Path(dl.stdout.strip())
    assert probe(mp3.read_bytes()).format_name == "mp3"


def test_api_errors_are_printed_with_code_and_action(api_url, tmp_path):
    bad = run(api_url, tmp_path, "login", "--username", "nobody_here", "--password", "wrong password")
    assert bad.returncode == 1
    assert "INVALID_CREDENTIALS" in bad.stderr
    (tmp_path / "empty").mkdir()
    nologin = run(api_url, tmp_path / "empty", "me")
    assert nologin.returncode == 1 and "newvisions login" in nologin.stdout + nologin.stderr
    unknown = run(api_url, tmp_path, "perform", "--routine", "x", "--topic", "y")
    assert unknown.returncode == 1


def test_make_demo_writes_a_playable_note(tmp_path):
    """What `make demo` runs, on a stack it starts itself, offline."""
    exe = str(Path(sys.executable).parent / "newvisions")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGO_", "REDIS_", "FLOWER_", "API_"))}
    proc = subprocess.run([exe, "demo", "--sample", str(SAMPLE)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr + (
        (tmp_path / ".data/logs/demo-stack.log").read_text() if (tmp_path / ".data/logs/demo-stack.log").exists()
        else "")
    notes = list((tmp_path / "out").glob("*.mp3"))
    assert len(notes) == 1
    info = probe(notes[0].read_bytes())
    assert info.format_name == "mp3" and info.duration_s > 5
    assert "characters" in proc.stdout and "LUFS" in proc.stdout
