"""Task modules; `celeryconfig.imports` loads this package in every worker."""

from workers.tasks import cleanup, clone, maintenance, perform, system  # noqa: F401
