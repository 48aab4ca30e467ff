"""Hostile and broken uploads through POST /user/voice, with the real API and a real worker.

Each file is refused up front with a clear 4xx (SAMPLE_* code, message, action) or accepted and
then failed by the clone job with a SAMPLE_* reason; none creates a voice, and the worker that
chewed on them still consumes afterwards (readiness answers its canaries). Oversized bodies are
refused before they are read: by the declared length, and by counting a chunked upload.

(tests/voice/test_clone.py covers random bytes, text, an empty file, a 10 % truncation, short,
clipped and near-silent samples; these are the nastier shapes.)"""

from __future__ import annotations

import io
import json
import socket
import struct
import subprocess
import tempfile
import time
import zipfile
import zlib
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests import samples
from tests.conftest import wait_job

CLONES = "clones"
SAMPLE_CODES = {"SAMPLE_UNSUPPORTED", "SAMPLE_TOO_SHORT", "SAMPLE_TOO_LONG", "SAMPLE_TOO_QUIET", "SAMPLE_CLIPPED",
                "SAMPLE_TOO_LARGE"}


def _ffmpeg(args: list[str], ext: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"out.{ext}"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args, str(out)], check=True, timeout=120)
        return out.read_bytes()


def _wav_header(data_size: int, riff_size: int | None = None, rate: int = 44100) -> bytes:
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    riff = riff_size if riff_size is not None else 4 + 8 + len(fmt) + 8 + data_size
    return b"RIFF" + struct.pack("<I", riff) + b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt \
        + b"data" + struct.pack("<I", data_size)


def _png() -> bytes:
    raw = b"".join(b"\x00" + bytes([x % 256, 0, 0] * 8) for x in range(8))
    chunk = lambda kind, body: struct.pack(">I", len(body)) + kind + body + struct.pack(
        ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)) \
        + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("voice.mp3", samples.original()[:50_000])
    return buf.getvalue()


@cache
def corpus() -> dict[str, tuple[str, bytes, str | None]]:
    """name -> (filename, bytes, the SAMPLE_* code we expect, None for any SAMPLE_* code, or
    CLONES when the bytes are a usable voice whatever their label says)."""
    mp3 = samples.original()
    pcm_2s = b"\x10\x00\xf0\xff" * 44100  # 2 s of a faint square wave, 16-bit mono
    ogg = bytearray(samples.reencoded("ogg"))
    ogg[len(ogg) // 4: len(ogg) - 5000] = bytes(len(ogg) - 5000 - len(ogg) // 4)  # most pages wiped
    return {
        "mp3 cut mid-frame at half": ("half.mp3", mp3[: len(mp3) // 2 + 17], None),
        # content wins over the label: ffmpeg finds the MP3 stream behind the bogus WAV header,
        # so this one is the real voice and clones (nothing half-made either way)
        "RIFF/WAVE header on MP3 data": ("voice.wav", _wav_header(len(mp3)) + mp3, CLONES),
        "WAV header claiming 4 GB": ("huge.wav", _wav_header(0xFFFFFFF0, 0xFFFFFFFF) + pcm_2s, None),
        "2 h of silent FLAC (decompression bomb)": (
            "bomb.flac", _ffmpeg(["-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "7200", "-c:a", "flac"],
                                 "flac"), "SAMPLE_TOO_LONG"),
        "MP4 with only a video track": (
            "clip.mp4", _ffmpeg(["-f", "lavfi", "-i", "testsrc=duration=2:size=64x64:rate=10", "-c:v", "mpeg4"],
                                "mp4"), "SAMPLE_UNSUPPORTED"),
        "PNG named .m4a": ("voice.m4a", _png(), "SAMPLE_UNSUPPORTED"),
        "PDF named .wav": ("voice.wav", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" * 300,
                           "SAMPLE_UNSUPPORTED"),
        # a stored (uncompressed) ZIP: ffmpeg finds the 2 s of MP3 frames inside -> too short
        "ZIP named .ogg": ("voice.ogg", _zip(), None),
        "ID3 tag and nothing else": ("tag.mp3", b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f" + bytes(2000), "SAMPLE_UNSUPPORTED"),
        "Ogg with wiped pages": ("voice.ogg", bytes(ogg), None),
    }


@pytest.mark.parametrize("name", list(corpus()))
def test_broken_upload_gets_a_clear_refusal_and_creates_nothing(client, new_user, workers, db, name):
    filename, data, expected = corpus()[name]
    user, headers = new_user()
    resp = client.post("/user/voice", headers=headers, files={"file": (filename, data, "audio/mpeg")})
    if expected == CLONES:
        assert resp.status_code == 202, resp.text
        job = wait_job(client, resp.json()["job_id"], headers, timeout_s=180)
        assert job["state"] == "succeeded", job
        assert db["voices"].count_documents({"user_id": user["id"], "state": "ready"}) == 1
        assert workers.procs["all"].poll() is None
        return
    if resp.status_code == 202:
        job = wait_job(client, resp.json()["job_id"], headers, timeout_s=180)
        assert job["state"] == "failed", job
        error = job["error"]
    else:
        assert 400 <= resp.status_code < 500, resp.text
        error = resp.json()
        assert db["jobs"].count_documents({"user_id": user["id"]}) == 0
    assert error["error"] in SAMPLE_CODES, error
    if expected:
        assert error["error"] == expected, error
    assert error["message"] and error["action"], error
    assert db["voices"].count_documents({"user_id": user["id"], "state": {"$nin": ["deleted", "missing"]}}) == 0
    meta = client.get("/user/voice/meta", headers=headers).json()
    assert meta["voice_clone_id"] is None and meta["clone_job_id"] is None
    # the worker that decoded it is alive and consuming
    assert workers.procs["all"].poll() is None


def test_worker_still_consumes_after_the_corpus(client, workers):
    resp = client.get("/health/ready")
    assert resp.status_code == 200, resp.text
    assert all(q["ok"] for q in resp.json()["checks"]["queues"].values())


def test_oversized_upload_refused_from_its_declared_length_before_the_body(api_url, new_user, settings):
    """Only the head is sent: a server that read the body first would wait (and time out)."""
    _, headers = new_user()
    host, port = urlsplit(api_url).hostname, urlsplit(api_url).port
    declared = settings.sample_max_bytes * 4
    head = (f"POST /user/voice HTTP/1.1\r\nHost: api\r\nAuthorization: {headers['Authorization']}\r\n"
            f"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: {declared}\r\n\r\n").encode()
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(head)
        answer = b""
        while not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)  # times out (fails) if the server waits for the body
            if not chunk:
                break
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413"), answer[:300]
    body = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert body["error"] == "SAMPLE_TOO_LARGE" and body["action"]
    assert time.monotonic() - started < 3


def test_oversized_chunked_upload_is_cut_off(client, new_user, settings):
    _, headers = new_user()
    boundary = "nvboundary"

    def body():
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.wav\"\r\n"
               f"Content-Type: audio/wav\r\n\r\n").encode()
        block = bytes(1 << 20)
        for _ in range(settings.sample_max_bytes // len(block) + 3):
            yield block
        yield f"\r\n--{boundary}--\r\n".encode()

    resp = client.post("/user/voice", content=body(),
                       headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert resp.status_code == 413, resp.text
    assert resp.json()["error"] == "SAMPLE_TOO_LARGE"


@pytest.mark.parametrize("auth", [None, "Bearer not-a-token"])
def test_an_unauthenticated_upload_is_answered_before_its_body_is_read(api_url, settings, auth):
    """Only the head and a sliver of the body are sent: a server that read (and spooled) the
    body before checking the caller would wait for the rest, and time out here."""
    host, port = urlsplit(api_url).hostname, urlsplit(api_url).port
    declared = settings.sample_max_bytes  # within the size limit: only authentication can refuse it
    head = (f"POST /user/voice HTTP/1.1\r\nHost: api\r\n" + (f"Authorization: {auth}\r\n" if auth else "")
            + f"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: {declared}\r\n\r\n"
            + "--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\n").encode()
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(head + bytes(64 * 1024))
        answer = b""
        while not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)  # times out (fails) if the server waits for the body
            if not chunk:
                break
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 401"), answer[:300]
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["error"] in ("AUTH_REQUIRED", "TOKEN_INVALID")


def test_an_upload_that_is_not_multipart_gets_a_clear_422(client, new_user):
    _, headers = new_user()
    resp = client.post("/user/voice", headers={**headers, "Content-Type": "audio/mpeg"},
                       content=b"ID3" + bytes(1000))
    assert resp.status_code == 422 and resp.json()["error"] == "VALIDATION_ERROR"
    assert "multipart" in resp.json()["message"]
    resp = client.post("/user/voice", headers=headers, files={"other": ("a.mp3", b"x", "audio/mpeg")})
    assert resp.status_code == 422 and "file" in resp.json()["message"]
