"""The root `newvisions` Typer app; command modules register on it."""

import typer

cli = typer.Typer(help="New Visions: voice notes in your own voice.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)
