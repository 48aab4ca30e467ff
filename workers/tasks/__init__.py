"""Task modules; `celeryconfig.imports` loads this package in every worker."""

from workers.tasks import maintenance, system  # noqa: F401
