"""``repscope ground``: which measure to trust, from tests with a known answer."""

from __future__ import annotations

from pathlib import Path

import typer


def ground(
    quick: bool = typer.Option(False, "--quick", help="5 seeds, 8 measures, a small zoo."),
    preset: str = typer.Option(None, "--preset", help="quick, full or test (overrides "
                               "--quick)."),
    out: Path = typer.Option(Path("repscope-out/grounding"), "--out", "-o",
                             help="Output folder (JSON, CSV, Markdown table, figure)."),
    measures: list[str] = typer.Option(None, "--measure", "-m", help="Measures to score "
                                       "(repeatable; the report's notation, e.g. "
                                       "'cka[kernel=rbf]'); default: the preset's."),
    variants: bool = typer.Option(False, "--variants", help="Every documented variant of "
                                  "every measure (full preset default)."),
    n_boot: int = typer.Option(200, "--n-boot", help="Resamples of the models."),
    zoo_folder: Path = typer.Option(None, "--zoo", help="Zoo folder (default "
                                    "$REPSCOPE_ZOO_DIR or ~/.cache/repscope/zoo)."),
) -> None:
    """Score similarity measures on tests with a known answer (layer identification,
    sensitivity and specificity, ReSi correlations, monotonicity) over seeds of a CNN trained
    here on Fashion-MNIST; writes OUT/grounding.{json,csv,md,png}."""
    from repscope.grounding import build_zoo, default_measures, run_grounding
    from repscope.grounding.benchmark import QUICK_MEASURES
    from repscope.measures.registry import canonical_name
    from repscope.measures.spec import parse_measure

    name = preset or ("quick" if quick else "full")
    zoo = build_zoo(name, folder=zoo_folder, progress=True)
    if measures:
        chosen = [(canonical_name(n), dict(p)) for n, p in map(parse_measure, measures)]
    elif name == "full" or variants:
        chosen = default_measures(variants=name == "full" or variants)
    else:
        chosen = list(QUICK_MEASURES)
    result = run_grounding(zoo, chosen, n_boot=n_boot, progress=None)
    paths = result.write(out)
    typer.echo(result.markdown())
    typer.echo(f"{len(result.measures)} measures × {len(result.tests)} tests in "
               f"{result.settings['seconds']:.0f} s; wrote " + ", ".join(str(p) for p in paths))
