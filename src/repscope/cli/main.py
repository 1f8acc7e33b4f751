"""Entry point of the ``repscope`` command.

Each command group lives in its own module and is mounted here.
"""

from __future__ import annotations

import sys

import typer

from repscope.cli import (
    compare_cmd,
    findings_cmd,
    ground_cmd,
    measures_cmd,
    paper_cmd,
    study_cmd,
    zoo_cmd,
)
from repscope.core.errors import RepscopeError, for_cli
from repscope.core.version import __version__

app = typer.Typer(
    name="repscope",
    help="Compare neural-network representations: in what sense are two models alike?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("measures")(measures_cmd.measures)
app.command("compare")(compare_cmd.compare)
app.command("profile")(compare_cmd.profile)
app.command("run", help=study_cmd.RUN_HELP)(study_cmd.run)
app.command("report")(study_cmd.report)
app.command("demo")(study_cmd.demo)
app.add_typer(paper_cmd.app, name="paper")
app.command("llv")(paper_cmd.llv)
app.add_typer(zoo_cmd.app, name="zoo")
app.command("ground")(ground_cmd.ground)
app.command("findings")(findings_cmd.findings)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"repscope {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """repscope: verified representational similarity, from models to answers."""


def main() -> None:
    """Run the CLI; repscope errors become a one-line message and exit code 2.

    Messages name ``repscope`` commands where the Python API names functions
    (:func:`repscope.core.errors.for_cli`).  A measure that fails for every pair
    exits with code 1 (``compare``, ``run``).
    """
    try:
        app()
    except RepscopeError as e:
        typer.echo(f"error: {for_cli(str(e))}", err=True)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
