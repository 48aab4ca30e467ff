"""The `newvisions` command line: dev stack, operator chores, and an API client."""

from cli import client, demo, ops  # noqa: F401  (register their commands)
from cli.app import cli


def main() -> None:
    cli()
