"""``repscope ground``: which measure to trust, from tests with a known answer."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def ground(
    study: Path = typer.Argument(None, help="A study TOML file: run the tests that apply to "
                                 "its own models (default: the built-in zoo)."),
    quick: bool = typer.Option(False, "--quick", help="5 seeds, 10 measures, a small zoo "
                               "trained here (about a minute)."),
    preset: str = typer.Option(None, "--preset", help="quick, full or test (overrides "
                               "--quick)."),
    out: Path = typer.Option(Path("repscope-out/grounding"), "--out", "-o",
                             help="Output folder (JSON, CSV, Markdown table, figure, HTML "
                             "page and the results database grounding.sqlite)."),
    measures: list[str] = typer.Option(None, "--measure", "-m", help="Measures to score "
                                       "(repeatable; the report's notation, e.g. "
                                       "'cka[kernel=rbf]'); default: the preset's."),
    variants: bool = typer.Option(False, "--variants", help="Every documented variant of "
                                  "every measure (full preset default)."),
    n_boot: int = typer.Option(None, "--n-boot", min=2, help="Resamples of the models "
                               "(default: 100 quick, 20 test, 200 otherwise)."),
    zoo_folder: Path = typer.Option(None, "--zoo", help="Zoo folder (default "
                                    "$REPSCOPE_ZOO_DIR or ~/.cache/repscope/zoo)."),
    groups: Path = typer.Option(None, "--groups", help="With a study: a JSON file "
                                "{test: {model: group}} for the group tests "
                                "(label_randomisation, shortcut, augmentation)."),
    trust: list[str] = typer.Option(None, "--trust", metavar="MODULE", help="With a study: "
                                    "allow its factories from MODULE (as repscope run)."),
) -> None:
    """Score similarity measures on tests with a known answer (layer identification,
    sensitivity and specificity, ReSi correlations, group separation, monotonicity) over
    seeds of a CNN trained here on Fashion-MNIST, or over a study's own models; writes
    OUT/grounding.{json,csv,md,png,html,sqlite}."""
    from repscope.core.errors import InvalidParameterError
    from repscope.grounding import build_zoo, default_measures, run_grounding
    from repscope.grounding.benchmark import QUICK_MEASURES
    from repscope.measures.registry import canonical_name
    from repscope.measures.spec import parse_measure

    name = preset or ("quick" if quick else "full")
    left_out: dict[str, str] = {}
    if study is not None:
        from repscope.cli.ground_study import zoo_from_study

        declared = None
        if groups is not None:
            try:
                declared = json.loads(groups.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise InvalidParameterError(f"--groups {groups}: {exc}") from exc
        zoo, left_out = zoo_from_study(study, out / "study", trust=trust or None,
                                       groups=declared, progress=True)
    else:
        if groups is not None:
            raise InvalidParameterError("--groups applies to a study's models; the built-in "
                                        "zoo has its own groups")
        zoo = build_zoo(name, folder=zoo_folder, progress=True)
    if measures:
        chosen = [(canonical_name(n), dict(p)) for n, p in map(parse_measure, measures)]
    elif study is None and (name == "full" or variants):
        chosen = default_measures(variants=True)
    elif variants:
        chosen = default_measures(variants=True)
    else:
        chosen = list(QUICK_MEASURES)
    boots = n_boot or {"quick": 100, "test": 20}.get(name if study is None else "", 200)
    result = run_grounding(zoo, chosen, n_boot=boots, progress=None, db=out)
    result.settings["left_out"] = left_out
    paths = result.write(out)
    typer.echo(result.markdown())
    for model, why in left_out.items():
        typer.echo(f"left out {model}: {why}")
    typer.echo(f"{len(result.measures)} measures × {len(result.tests)} tests in "
               f"{result.settings['seconds']:.0f} s ({len(result.skipped)} skipped); wrote "
               + ", ".join(str(p) for p in paths))
