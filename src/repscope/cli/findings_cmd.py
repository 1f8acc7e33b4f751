"""``repscope findings``: what populations of models trained differently share."""

from __future__ import annotations

from pathlib import Path

import typer


def findings(
    quick: bool = typer.Option(False, "--quick", help="The quick preset (86–101 s measured "
                               "on 2 shared cores from an empty zoo folder)."),
    preset: str = typer.Option(None, "--preset", help="quick, full or test (tiny generated "
                               "data; overrides --quick)."),
    out: Path = typer.Option(None, "--out", "-o", help="Output folder (default "
                             "repscope-out/findings-<preset>)."),
    zoo: Path = typer.Option(None, "--zoo", help="Zoo folder (default $REPSCOPE_ZOO_DIR or "
                             "~/.cache/repscope/zoo)."),
    data_path: Path = typer.Option(None, "--data-path", help="Folder of the Fashion-MNIST "
                                   "IDX files (default: the Debian package's)."),
    corpus_path: Path = typer.Option(None, "--corpus-path", help="Read the language models' "
                                     "corpus from this file or folder."),
    no_real: bool = typer.Option(False, "--no-real", help="Skip MiniLM, MPNet and "
                                 "MobileNetV2."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Hide progress."),
    grounding: Path = typer.Option(None, "--grounding", help="A `repscope ground` result "
                                   "(grounding.json) to say which measure to trust for each "
                                   "class; default: one in OUT or in a sibling grounding "
                                   "folder."),
) -> None:
    """Numbered findings with CIs, nulls and BH control over model populations trained
    differently (seed, width, depth, architecture, objective, data, training time, tiny
    language models) and real networks; writes OUT/findings.{html,md,json,sqlite}."""
    from repscope.findings import run_findings

    name = preset or ("quick" if quick else "full")
    target = out or Path("repscope-out") / f"findings-{name}"
    data = run_findings(name, out=target, zoo=zoo, data_path=data_path,
                        corpus_path=corpus_path, real=not no_real, progress=not no_progress,
                        grounding=grounding)
    for f in data["findings"]:
        typer.echo(f"{f['number']}. {f['text']}")
    typer.echo(f"{len(data['findings'])} findings in {data['timings']['total']:.0f} s; wrote "
               f"{target / 'findings.html'}, findings.md, findings.json, findings.sqlite")
