"""Perform: routine catalog, safe prompt, post-checks, the compose policy and the perform job.

Plain Python (no Celery, no FastAPI). Modules are imported directly (`shared.perform.routines`,
`shared.perform.service`, ...) so the API does not load what only workers need.
"""
