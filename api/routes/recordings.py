from __future__ import annotations

import re

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from api.deps import AUTHENTICATED, Db, RecentUser
from api.openapi import RANGE_HEADER, RECORDING_AUDIO, error_responses
from shared.errors import NotFound, ValidationFailed
from shared.recordings import service
from shared.recordings.schemas import Recording, RecordingPage

router = APIRouter(prefix="/recordings", tags=["recordings"], responses=error_responses(AUTHENTICATED))
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@router.get("", name="list", responses=error_responses(AUTHENTICATED, ValidationFailed))
def list_recordings(user: RecentUser, db: Db, limit: int = Query(20, ge=1, le=100),
                    cursor: str | None = Query(None, max_length=200, description=(
                        "The `next_cursor` of the previous page."))) -> RecordingPage:
    """Your voice notes, newest first. Pass `next_cursor` back as `cursor` for the next page."""
    return service.list_page(db, user.id, limit, cursor)


_OWNED = error_responses(AUTHENTICATED, NotFound, ValidationFailed)


@router.get("/{recording_id}", name="get", responses=_OWNED)
def get_recording(recording_id: str, user: RecentUser, db: Db) -> Recording:
    """One voice note (another user's answers 404)."""
    return service.public(service.get_owned(db, user.id, recording_id))


@router.get("/{recording_id}/audio", name="audio", response_class=Response,
            responses={**RECORDING_AUDIO, **_OWNED}, openapi_extra={"parameters": [RANGE_HEADER]})
def recording_audio(recording_id: str, request: Request, user: RecentUser, db: Db):
    """The MP3. Supports `Range: bytes=start-end` so players can seek."""
    audio = service.open_audio(db, user.id, recording_id)
    size = audio.size
    headers = {"Accept-Ranges": "bytes", "Content-Disposition": f'inline; filename="{recording_id}.mp3"',
               "Cache-Control": "private, max-age=3600"}
    start, end = 0, size - 1
    status = 200
    range_header = request.headers.get("range")
    if range_header:
        match = _RANGE.match(range_header.strip())
        if match and (match.group(1) or match.group(2)):
            first, last = match.group(1), match.group(2)
            if first:
                start, end = int(first), min(int(last), size - 1) if last else size - 1
            else:  # suffix range: the last N bytes
                start, end = max(0, size - int(last)), size - 1
            if start >= size or start > end:
                audio.close()
                return Response(status_code=416, headers={"Content-Range": f"bytes */{size}", **headers})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        # a malformed or multi-range header is ignored: the whole file is sent (RFC 9110 allows it)
    headers["Content-Length"] = str(end - start + 1)
    return StreamingResponse(audio.read(start, end), status_code=status, media_type="audio/mpeg", headers=headers)


@router.delete("/{recording_id}", name="delete", status_code=204, response_class=Response, responses=_OWNED)
def delete_recording(recording_id: str, user: RecentUser, db: Db) -> Response:
    """Delete the note and its audio."""
    service.delete(db, user.id, recording_id)
    return Response(status_code=204)
