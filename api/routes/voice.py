from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUploadFile
from starlette.formparsers import MultiPartException

from api.deps import AUTHENTICATED, LIMITED, CurrentUser, Db, Jobs, SettingsDep, UploadLimit, Users
from api.job_schemas import JobAccepted
from api.openapi import LOCATION, VOICE_SOURCE, error_responses
from api.responses import accepted
from shared import storage
from shared.errors import CloneInProgress, NotFound, SampleTooLarge, SampleUnsupported, ValidationFailed
from shared.voices.clone import accept_upload, voice_meta
from shared.voices.schemas import VoiceMeta

router = APIRouter(prefix="/user/voice", tags=["voice"])


#: documented by hand: the route reads the multipart body itself, after authentication
_UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary",
                            "description": "The recording: mp3, wav, m4a, ogg, webm or flac, 30 s - 3 min"}},
}}}}}


async def _read_sample(request: Request, limit: int) -> tuple[bytes, str, str | None]:
    """The uploaded file's bytes, name and declared type, read only now: the route's
    dependencies (authentication, rate limit) have already run, so an anonymous or throttled
    request is answered before a byte of its body is read or spooled."""
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise ValidationFailed("Send the recording as multipart/form-data with a 'file' field.",
                               action="Upload the file as form field 'file' (curl -F file=@sample.mp3).")
    try:
        form = await request.form(max_files=1, max_fields=8, max_part_size=64 * 1024)
    except (MultiPartException, ValueError) as exc:
        raise ValidationFailed(f"The multipart body could not be read ({exc}).") from exc
    try:
        file = form.get("file")
        if not isinstance(file, StarletteUploadFile):
            raise ValidationFailed("file: a recording is required in the form field 'file'.",
                                   details={"field": "file"})
        data = await file.read(limit + 1)
        if len(data) > limit:
            raise SampleTooLarge(f"The file is larger than the {limit / 1e6:.0f} MB limit.")
        return data, file.filename or "sample", file.content_type
    finally:
        await form.close()


@router.post("", name="upload", status_code=202, openapi_extra=_UPLOAD_BODY, responses={
    202: {"headers": LOCATION},
    **error_responses(AUTHENTICATED, LIMITED, CloneInProgress, SampleTooLarge, SampleUnsupported, ValidationFailed)})
async def upload_sample(request: Request, response: Response, user: CurrentUser, _limit: UploadLimit, db: Db,
                        jobs: Jobs, settings: SettingsDep, users: Users) -> JobAccepted:
    """Upload a voice sample (30 s – 3 min; mp3, wav, m4a, ogg, webm or flac). A clone job
    cleans it and creates your voice; follow it at `events_url`. Oversized bodies are refused
    before they are read (BodySizeLimitMiddleware), and nothing is read before the caller is
    authenticated and within its upload limit. Uploads are limited per user, and a new sample
    waits a while after a clone succeeded (429)."""
    data, filename, content_type = await _read_sample(request, settings.sample_max_bytes)
    view = await run_in_threadpool(accept_upload, db, jobs, settings, user, data, filename, content_type)
    users.forget(user.id)
    return accepted(request, response, view)


@router.get("/meta", name="meta", responses=error_responses(AUTHENTICATED))
def get_voice_meta(user: CurrentUser) -> VoiceMeta:
    """Your voice: state (none|pending|ready|failed|evicted), voice id, sample quality, last action."""
    return voice_meta(user)


@router.get("/source", name="source", response_class=Response,
            responses={**VOICE_SOURCE, **error_responses(AUTHENTICATED, NotFound, ValidationFailed)})
def get_voice_source(user: CurrentUser, db: Db, original: bool = Query(False)) -> Response:
    """Your stored sample: the normalized MP3, or with `?original=true` the file you uploaded."""
    sample = user.sample
    file_id = sample and (sample.original_id if original else sample.normalized_id)
    if not file_id:
        raise NotFound("No voice sample is stored for this account.", action="Upload one with POST /user/voice.")
    try:
        stream = storage.open_stream(db, storage.SAMPLES, file_id)
    except Exception as exc:  # gridfs.NoFile
        if type(exc).__name__ != "NoFile":
            raise
        raise NotFound("The stored sample is missing.") from exc
    meta = stream.metadata or {}
    media = "audio/mpeg" if not original else (meta.get("content_type") or "application/octet-stream")
    if original and not media.startswith("audio/"):
        media = "application/octet-stream"
    name = stream.filename if original else "voice-sample.mp3"
    return Response(stream.read(), media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="{_safe(name)}"'})


def _safe(name: str) -> str:
    return "".join(c for c in name if c.isalnum() or c in "._- ")[:100] or "sample"
