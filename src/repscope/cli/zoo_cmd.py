"""``repscope zoo``: the offline data, and training the model populations."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="The model zoo: offline data sets and trained populations.",
                  no_args_is_help=True)


@app.command("data")
def data() -> None:
    """List the zoo's data sets and weights: present (with SHA-256) or how to get them."""
    from repscope.zoo.manifest import data_manifest

    for row in data_manifest():
        if "absent" in row:
            typer.echo(f"{row['name']:<20} absent — {row['absent']}")
        else:
            ok = {True: "as recorded", False: "DIFFERS from the recorded hash",
                  None: "no recorded hash"}[row["matches_known"]]
            typer.echo(f"{row['name']:<20} {row['size']:>9} {row['unit']:<10} "
                       f"sha256 {row['sha256'][:16]}… {ok}  ({row['package']}, {row['licence']})")


@app.command("train")
def train(
    preset: str = typer.Option("quick", "--preset", help="quick, full or test."),
    out: Path = typer.Option(None, "--out", "-o", help="Zoo folder (default "
                             "$REPSCOPE_ZOO_DIR or ~/.cache/repscope/zoo)."),
) -> None:
    """Train the Fashion-MNIST population of a preset (cached: models already trained are
    read back), and print one line per model."""
    from repscope.zoo.fashion import train_fashion_population

    zoo = train_fashion_population(preset, folder=out, progress=True)
    for name, e in zoo.entries.items():
        score = (f"accuracy {e['test_accuracy']:.3f}" if "test_accuracy" in e
                 else f"reconstruction MSE {e['test_reconstruction_mse']:.4f}")
        factors = ", ".join(f"{f}={lvl}" for f, lvl in e["spec"]["factors"])
        typer.echo(f"{name:<40} {score:<28} {e['training_flops']:.2e} FLOPs  [{factors}]")
    typer.echo(f"{len(zoo.entries)} models in {zoo.folder}")
