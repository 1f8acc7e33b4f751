"""``repscope run``, ``repscope report`` and ``repscope demo``."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

from repscope.cli.compare_cmd import CIMethod
from repscope.cli.output import failed_measures, report_failures, row_label
from repscope.core.errors import RepscopeError

RUN_HELP = (
    "Run a study: extract → compare → report; re-running resumes where it stopped, "
    "re-using the activations and result rows already in the output folder.\n\n"
    "A study file is data, except that factory = \"module:function\" runs code like a "
    "script. Without --trust only the factories registered in repscope.zoo (or by an "
    "installed package's repscope.factories entry point) load; nothing in a study file "
    "can grant trust.\n\n"
    "One run at a time per output folder: a second run on the same --out stops and "
    "names the process that holds it."
)


def run(
    study: Path = typer.Argument(..., help="Study TOML file."),
    out: Path = typer.Option(None, "--out", "-o", help="Output folder (default "
                             "repscope-out/<study name>)."),
    no_report: bool = typer.Option(False, "--no-report", help="Skip writing report.html."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output (shown by "
                               "default when stderr is a terminal)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
    permutations: int = typer.Option(
        None, "--permutations", min=0, help="Override [stats] permutations (0 = off)."),
    n_boot: int = typer.Option(
        None, "--n-boot", min=0, help="Override [stats] bootstrap: interval resamples "
        "(0 = off)."),
    ci_method: CIMethod = typer.Option(
        None, "--ci-method", case_sensitive=False, help="Override [stats] ci: the interval "
        "method (turns intervals on)."),
    memory: str = typer.Option(
        None, "--memory", help="Memory budget of each comparison, e.g. 4GiB (overrides "
        "[compare] memory)."),
    dask: str = typer.Option(
        None, "--dask", help="Run the comparisons on Dask: a scheduler address (tcp://host:port), "
        "or local / local:N for a local cluster."),
    trust: list[str] = typer.Option(
        None, "--trust", metavar="MODULE",
        help="Allow the study's factories from MODULE (and its submodules), or one "
        "module:function. A trusted factory runs code like a script: trust only code you "
        "wrote or reviewed. Repeatable."),
) -> None:
    """Run a study: extract → compare → report; re-running resumes where it stopped.

    Exits with code 1 when a measure could not be computed for any pair (its
    first error is printed), 2 for a bad study file or bad options.
    """
    from repscope.study import load_study, run_study
    from repscope.study.trust import Trust

    policy = Trust.of(trust or None)
    spec = load_study(study)
    if memory is not None:
        from repscope.core.memory import parse_memory

        parse_memory(memory)  # a malformed budget is bad input (exit code 2)
    overrides = {"permutations": permutations, "bootstrap": n_boot,
                 "ci_method": None if ci_method is None else ci_method.value,
                 "memory": memory}
    spec = replace(spec, **{k: v for k, v in overrides.items() if v is not None})
    if ci_method is not None and not spec.bootstrap:  # an interval method asks for intervals
        from repscope.inference.options import DEFAULT_BOOTSTRAP

        spec = replace(spec, bootstrap=DEFAULT_BOOTSTRAP)
    policy.check([spec])  # before anything is imported or created
    engine: Any = contextlib.nullcontext()
    if dask:
        from repscope.engine.distributed import dask_client

        engine = dask_client(dask)  # grid() picks up the active client
    with engine:
        outcome = run_study(spec, out, progress=False if quiet or as_json else None,
                            report=not no_report, trust=policy)
    summary = {"out": str(outcome.out), "database": str(outcome.db_path),
               "report": str(outcome.report_path) if outcome.report_path else None,
               "rows": outcome.n_rows}
    if as_json:
        typer.echo(json.dumps(summary))
    elif not quiet:
        typer.echo(f"{outcome.n_rows} result rows in {outcome.db_path}")
    report_failures(_failed(spec, outcome.db_path), pairs="every pair")


def _failed(spec: Any, db_path: Path) -> dict[str, str]:
    """The study's measures whose every stored row holds an error instead of a value."""
    from repscope.storage.results_db import ResultsDB
    from repscope.study.schema import measure_label

    wanted = {measure_label(m) for m in spec.measures}
    with ResultsDB(db_path) as db:
        rows = [r for r in db.rows() if row_label(r) in wanted]
    return failed_measures(rows)


def report(
    folder: Path = typer.Argument(..., help="Study output folder (holds results.sqlite)."),
    out: Path = typer.Option(None, "--out", "-o",
                             help="HTML file (default FOLDER/report.html)."),
    title: str = typer.Option("repscope report", "--title", help="Page title."),
    fitted: str = typer.Option(None, "--fitted", help="Fitted measures (CCA family, "
                               "regression): heldout (default) or in_sample."),
    adjust: str = typer.Option(None, "--adjust", help="p-value adjustment within each "
                               "figure: bh (Benjamini–Hochberg, default) or holm."),
    q: float = typer.Option(None, "--q", help="Level of the adjustment (default 0.05)."),
) -> None:
    """Write the self-contained HTML report of a study folder."""
    import warnings

    from repscope.core.errors import RepscopeWarning
    from repscope.report import build_report
    from repscope.report.sources import findings_page
    from repscope.storage.results_db import ResultsDB
    from repscope.study.runner import load_extras

    db_path = folder / "results.sqlite"
    if not db_path.exists():
        raise RepscopeError(f"no results database at {db_path}; run `repscope run` first")
    with ResultsDB(db_path) as db:
        db.check()
        results = db.to_pandas()
    path = out or folder / "report.html"
    extras = load_extras(folder)
    page = findings_page(folder)
    if page is not None:  # a relative link, so the folder can move as a whole
        extras["findings_page"] = os.path.relpath(page, path.parent)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RepscopeWarning)  # printed below, once each
        rep = build_report(results, extras, title=title, fitted=fitted,
                           adjust=adjust, q=q)
    rep.write(path)
    for line in rep.warnings:
        typer.echo(f"warning: {line}", err=True)
    typer.echo(f"report written to {path}")


def demo(
    out: Path = typer.Option(Path("repscope-out/demo"), "--out", "-o", help="Output folder."),
    quick: bool = typer.Option(False, "--quick", help="A smaller, faster configuration."),
    no_text_models: bool = typer.Option(False, "--no-text-models",
                                        help="Skip the MiniLM vs MPNet comparison."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output (shown by "
                               "default when stderr is a terminal)."),
) -> None:
    """Run the built-in offline demo and write OUT/report.html."""
    from repscope.study.demo import run_demo

    outcome = run_demo(out, quick=quick, include_text_models=not no_text_models,
                       progress=False if quiet else None)
    for line in outcome.extras.get("findings", []):
        typer.echo(f"• {line}")
    typer.echo(f"report: {outcome.report_path}")
