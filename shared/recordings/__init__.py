"""Recordings: finished voice notes (MP3 in GridFS, metadata in `recordings`)."""
