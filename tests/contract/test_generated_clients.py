"""Clients generated from the schema, as client developers make them, work against the real
stack: a Python client (openapi-python-client) generated without a warning runs the whole
journey with typed results, and TypeScript types (openapi-typescript) type-check with tsc.

Nothing generated is kept: both are written under the test's temporary directory. The npm
tools are pinned by tests/contract/npm/package-lock.json and installed once into
.cache/npm-tools (git-ignored); a changed lock file installs them again."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import time
import uuid
import warnings
from pathlib import Path

import httpx
import pytest

from api.openapi import document, render
from tests.conftest import REPO, SAMPLE
from tests.contract.conformance import contract

HERE = Path(__file__).resolve().parent
NPM_TOOLS = REPO / ".cache" / "npm-tools"
PACKAGE = "newvisions_client"


@pytest.fixture(scope="module")
def schema_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("schema") / "openapi.json"
    path.write_text(render(document()), "utf-8")
    return path


# ------------------------------------------------------------------ Python


@pytest.fixture(scope="module")
def python_client(schema_file, tmp_path_factory):
    """The generated package, imported; generation and import must be free of warnings."""
    out = tmp_path_factory.mktemp("python-client")
    venv_bin = Path(sys.executable).parent
    generated = subprocess.run(
        [str(venv_bin / "openapi-python-client"), "generate", "--path", str(schema_file), "--meta", "none",
         "--output-path", str(out / PACKAGE), "--config", str(HERE / "python-client.yaml"), "--fail-on-warning"],
        capture_output=True, text=True, timeout=300,
        # its post-hooks run ruff from the PATH: the one installed beside it
        env={"PATH": f"{venv_bin}:/usr/bin:/bin", "HOME": str(out)})
    report = generated.stdout + generated.stderr
    assert generated.returncode == 0 and "warning" not in report.lower(), report
    compiled = subprocess.run([sys.executable, "-W", "error", "-m", "compileall", "-q", str(out / PACKAGE)],
                              capture_output=True, text=True, timeout=120)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    sys.path.insert(0, str(out))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for module in ("", ".api.auth.auth_register", ".api.auth.auth_login", ".api.voice.voice_upload",
                           ".api.jobs.jobs_get", ".api.perform.perform_create", ".api.recordings.recordings_get",
                           ".api.recordings.recordings_list", ".api.recordings.recordings_audio", ".models",
                           ".types"):
                importlib.import_module(PACKAGE + module)
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _follow(jobs_get, client, job_id: str, timeout_s: float = 180):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = jobs_get.sync(job_id, client=client)
        if job.state.value in ("succeeded", "failed"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish in {timeout_s} s")


def test_the_generated_python_client_runs_the_whole_journey(python_client, api_url, workers, db):
    from newvisions_client import AuthenticatedClient, Client
    from newvisions_client.api.auth import auth_login, auth_register
    from newvisions_client.api.jobs import jobs_get
    from newvisions_client.api.perform import perform_create
    from newvisions_client.api.recordings import recordings_audio, recordings_get, recordings_list
    from newvisions_client.api.voice import voice_upload
    from newvisions_client.models import (
        CloneResult,
        ErrorBody,
        ErrorCode,
        Job,
        JobAccepted,
        LoginRequest,
        PerformAccepted,
        PerformRequest,
        PerformResult,
        Recording,
        RecordingPage,
        RegisterRequest,
        TokenResponse,
        UserOut,
        VoiceUploadBody,
    )
    from newvisions_client.types import File

    from shared.users.codes import create_codes

    # the answers the generated client receives are held against the schema too
    options = {"httpx_args": {"event_hooks": {"response": [contract().check]}},
               "raise_on_unexpected_status": True, "timeout": httpx.Timeout(60)}
    name, password = f"gen{uuid.uuid4().hex[:10]}", "correct horse 1"
    anonymous = Client(base_url=api_url, **options)
    user = auth_register.sync(client=anonymous, body=RegisterRequest(
        username=name, email=f"{name}@example.com", password=password,
        activation_code=create_codes(db, 1, 30)[0]))
    assert isinstance(user, UserOut) and user.username == name
    token = auth_login.sync(client=anonymous, body=LoginRequest(username=name, password=password))
    assert isinstance(token, TokenResponse)
    client = AuthenticatedClient(base_url=api_url, token=token.access_token, **options)

    # no voice yet: the error is typed, its code an enum member
    refused = perform_create.sync(client=client, body=PerformRequest(routine_type="gratitude", topic="my sister"))
    assert isinstance(refused, ErrorBody) and refused.error is ErrorCode.VOICE_CLONE_REQUIRED

    with SAMPLE.open("rb") as sample:
        upload = voice_upload.sync(client=client, body=VoiceUploadBody(
            file=File(payload=sample, file_name=SAMPLE.name, mime_type="audio/mpeg")))
    assert isinstance(upload, JobAccepted) and upload.status_url.endswith(upload.job_id)
    clone = _follow(jobs_get, client, upload.job_id)
    assert isinstance(clone, Job) and clone.state.value == "succeeded", clone.error
    assert isinstance(clone.result, CloneResult) and clone.result.quality.speech_s > 20

    accepted = perform_create.sync(client=client, idempotency_key=f"journey-{name}", body=PerformRequest(
        routine_type="morning_motivation", topic="my first 10k on Sunday"))
    assert isinstance(accepted, PerformAccepted) and accepted.replayed is False and accepted.quota.remaining > 0
    job = _follow(jobs_get, client, accepted.job_id)
    assert job.state.value == "succeeded", job.error
    note = job.result
    assert isinstance(note, PerformResult) and note.chars.raw > 0

    recording = recordings_get.sync(note.recording_id, client=client)
    assert isinstance(recording, Recording) and recording.job_id == accepted.job_id
    page = recordings_list.sync(client=client)
    assert isinstance(page, RecordingPage) and [r.id for r in page.items] == [recording.id]

    audio = recordings_audio.sync(note.recording_id, client=client)
    assert isinstance(audio, File)
    mp3 = audio.payload.read()
    assert len(mp3) == recording.size and (mp3[:3] == b"ID3" or mp3[0] == 0xFF)
    head = recordings_audio.sync_detailed(note.recording_id, client=client, range_="bytes=0-99")
    assert head.status_code == 206 and head.parsed.payload.read() == mp3[:100]
    assert head.headers["content-range"] == f"bytes 0-99/{len(mp3)}"


# ------------------------------------------------------------------ TypeScript

#: what a web app would write against the generated types; the `@ts-expect-error` lines prove
#: the types are precise (tsc fails if those lines type-check)
USAGE_TS = """\
import type { components, paths } from "./api";

type Job = components["schemas"]["Job"];
type ErrorBody = components["schemas"]["ErrorBody"];
type PerformAccepted = paths["/perform"]["post"]["responses"][202]["content"]["application/json"];
type RecordingPage = paths["/recordings"]["get"]["responses"][200]["content"]["application/json"];

export function noteOf(job: Job): string | null {
  const result = job.result;
  if (job.state === "succeeded" && result && "recording_id" in result && typeof result.recording_id === "string") {
    return result.recording_id;
  }
  return null;
}

export function shouldRetry(error: ErrorBody): boolean {
  return error.error === "RATE_LIMITED" || error.error === "SERVICE_UNAVAILABLE";
}

export function summary(accepted: PerformAccepted, page: RecordingPage): string {
  return `${accepted.job.state} ${accepted.quota.remaining} ${page.items.map((r) => r.audio_url).join(",")}`;
}

// @ts-expect-error: not a code the API sends
export const unknownCode: ErrorBody["error"] = "NO_SUCH_CODE";
// @ts-expect-error: a job has no such state
export const unknownState: Job["state"] = "paused";
"""


@pytest.fixture(scope="session")
def npm_tools() -> Path:
    """The pinned openapi-typescript and tsc, installed from the npm registry on first use."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.fail("node and npm are needed: `make testdeps` installs them (deploy/sysdeps.sh --test)")
    lock = HERE / "npm" / "package-lock.json"
    stamp = NPM_TOOLS / ".installed-lock"
    bin_dir = NPM_TOOLS / "node_modules" / ".bin"
    if stamp.exists() and stamp.read_bytes() == lock.read_bytes() and (bin_dir / "tsc").exists():
        return bin_dir
    NPM_TOOLS.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(HERE / "npm" / name, NPM_TOOLS / name)
    installed = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=NPM_TOOLS,
                               capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    stamp.write_bytes(lock.read_bytes())
    return bin_dir


def test_typescript_types_from_the_schema_type_check(schema_file, npm_tools, tmp_path):
    generated = subprocess.run([str(npm_tools / "openapi-typescript"), str(schema_file), "-o", str(tmp_path / "api.d.ts")],
                               capture_output=True, text=True, timeout=300)
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert "export interface components" in (tmp_path / "api.d.ts").read_text()
    (tmp_path / "usage.ts").write_text(USAGE_TS)
    checked = subprocess.run([str(npm_tools / "tsc"), "--noEmit", "--strict", "--target", "es2022", "--module", "es2022",
                              "--moduleResolution", "bundler", str(tmp_path / "api.d.ts"), str(tmp_path / "usage.ts")],
                             capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
