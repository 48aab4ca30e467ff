"""Celery workers: thin tasks that load a job by id and call one service in `shared/`."""
