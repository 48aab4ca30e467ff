from __future__ import annotations

import re

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from api.deps import Db, RecentUser
from shared.recordings import service

router = APIRouter(prefix="/recordings", tags=["recordings"])
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@router.get("")
def list_recordings(user: RecentUser, db: Db, limit: int = Query(20, ge=1, le=100),
                    cursor: str | None = Query(None, max_length=200)) -> dict:
    """Your voice notes, newest first. Pass `next_cursor` back as `cursor` for the next page."""
    return service.list_page(db, str(user["_id"]), limit, cursor)


@router.get("/{recording_id}")
def get_recording(recording_id: str, user: RecentUser, db: Db) -> dict:
    return service.public(service.get_owned(db, str(user["_id"]), recording_id))


@router.get("/{recording_id}/audio", response_class=Response,
            responses={200: {"content": {"audio/mpeg": {}}}, 206: {"description": "Partial content (Range)"},
                       416: {"description": "Range not satisfiable"}})
def recording_audio(recording_id: str, request: Request, user: RecentUser, db: Db):
    """The MP3. Supports `Range: bytes=start-end` so players can seek."""
    audio = service.open_audio(db, str(user["_id"]), recording_id)
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


@router.delete("/{recording_id}", status_code=204)
def delete_recording(recording_id: str, user: RecentUser, db: Db) -> Response:
    service.delete(db, str(user["_id"]), recording_id)
    return Response(status_code=204)
