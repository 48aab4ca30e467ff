"""The `newvisions` command line: dev stack, operator chores, and an API client."""

from shared.cli import client, demo, ops  # noqa: F401  (register their commands)
from shared.cli.app import cli


def main() -> None:
    cli()
