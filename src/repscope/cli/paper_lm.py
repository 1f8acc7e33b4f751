"""``repscope paper lm``: the paper's claims on tiny language models trained here.

The command wires the zoo (:mod:`repscope.zoo.tiny_lm`: tokeniser, training,
cache) to the experiment (:mod:`repscope.identifiability.experiments.lm`); the two
packages do not know each other.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from repscope.core.errors import InvalidParameterError

#: held-out windows of ``context`` tokens the models are compared on, per preset
EVAL_WINDOWS = {"quick": 64, "full": 128, "test": 16}


def build_lm_models(preset: str, corpus: str, *, zoo: Path | None = None,
                    corpus_path: Path | None = None, progress: bool = True) -> list[Any]:
    """Train (or read back) the preset's models and run each over the held-out contexts."""
    from repscope.identifiability.experiments.lm import LMModel
    from repscope.identifiability.next_token import next_token_states
    from repscope.zoo.tiny_lm import lm_population, train_language_models

    specs = lm_population(preset, corpus)
    lmzoo = train_language_models(specs, folder=zoo, corpus_path=corpus_path,
                                  n_eval_windows=EVAL_WINDOWS[preset], progress=progress)
    out = []
    for spec in specs:
        e = lmzoo.entries[spec.name]
        windows = lmzoo.windows(spec.context, EVAL_WINDOWS[preset])
        states = next_token_states(lmzoo.load(spec.name), list(windows), batch_size=32,
                                   name=spec.name)
        info = {k: e[k] for k in ("held_out_loss", "tokens_seen", "training_flops",
                                  "parameters", "train_seconds")}
        info["tokenizer_sha256"] = e["tokenizer"]["sha256"]
        out.append(LMModel(spec.name, spec.width, spec.seed, e["weights_sha256"], states, info))
    return out


def lm(
    quick: Annotated[bool, typer.Option("--quick", help="The quick preset (same as "
                                        "--preset quick).")] = False,
    preset: Annotated[str, typer.Option(help="quick, full or test (a tiny generated "
                                        "corpus).")] = "quick",
    corpus: Annotated[str | None, typer.Option(help="shakespeare, wikipedia, bible or "
                                               "generated (default: shakespeare; "
                                               "generated for --preset test).")] = None,
    corpus_path: Annotated[Path | None, typer.Option(
        help="Read the corpus from this file or folder instead of its package.")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Output directory (default repscope-out/paper/lm-<preset>-<corpus>).")] = None,
    zoo: Annotated[Path | None, typer.Option(
        help="Zoo folder for the models (default $REPSCOPE_ZOO_DIR).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the claims as JSON.")] = False,
    fresh: Annotated[bool, typer.Option("--fresh", help="Discard earlier results in --out "
                                        "(the trained models stay in the zoo).")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide progress.")]
    = False,
) -> None:
    """The paper's claims on tiny causal transformers (seeds × widths, one tokeniser): KL,
    d_LLV, d_{f,g}, m_CCA, CKA and Procrustes for every pair, figures, claims with CIs."""
    from repscope.identifiability.experiments.common import jsonable
    from repscope.identifiability.experiments.lm import (
        LM_CONFIGS,
        run_lm_experiment,
        summarize_widths,
    )

    if quick:
        preset = "quick"
    if preset not in LM_CONFIGS:
        raise InvalidParameterError(f"unknown preset {preset!r}; choose from {list(LM_CONFIGS)}")
    corpus = corpus or ("generated" if preset == "test" else "shakespeare")
    out = out or Path("repscope-out") / "paper" / f"lm-{preset}-{corpus}"
    if fresh:
        discard_results(out)
    t0 = time.perf_counter()
    models = build_lm_models(preset, corpus, zoo=zoo, corpus_path=corpus_path,
                             progress=not no_progress)
    settings = {"preset": preset, "corpus": corpus}
    pairs, claims = run_lm_experiment(out, models, LM_CONFIGS[preset], settings=settings,
                                  progress=not no_progress)
    seconds = time.perf_counter() - t0
    if as_json:
        typer.echo(json.dumps(jsonable({**claims, "seconds": seconds}), indent=2))
        return
    cfg = LM_CONFIGS[preset]
    print_summary(f"same-width pairs at K = {cfg.main_k} (means)",
                  summarize_widths(pairs, cfg.main_k).to_dict("records"))
    for line in claim_lines(claims):
        typer.echo(line)
    typer.echo(f"{seconds:.0f} s; tables, claims.json and figures in {out}")


#: what ``repscope paper lm`` writes into ``--out`` (``--fresh`` removes these only)
OUTPUTS = ("config.json", "models.csv", "pairs.csv", "summary.csv", "claims.json",
           *(f"{fig}.{ext}" for fig in ("fig_llv_vs_kl", "fig_fg_vs_llv", "fig_width")
             for ext in ("png", "svg")))
_SUMMARY = ["width", "n_pairs", "mean_kl_sym", "mean_d_llv", "mean_d_fg_lower",
            "mean_d_fg_upper", "mean_m_cca", "mean_cka", "mean_procrustes"]


def discard_results(out: Path) -> None:
    """Remove what an earlier run wrote into ``out`` (the zoo's models stay)."""
    for name in OUTPUTS:
        (out / name).unlink(missing_ok=True)


def print_summary(title: str, rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for c in _SUMMARY:
        table.add_column(c, justify="right")
    for r in rows:
        table.add_row(*(f"{r[c]:.4g}" if isinstance(r.get(c), float) else str(r.get(c))
                        for c in _SUMMARY))
    Console(width=160).print(table)


def _ci(d: dict[str, Any]) -> str:
    return f"{d['estimate']:.3g} [{d['ci_low']:.3g}, {d['ci_high']:.3g}]"


def claim_lines(claims: dict[str, Any]) -> list[str]:
    """The claims in words: statistic, least- and most-favourable CIs, verdict."""
    if "error" in claims:
        return [f"claims not judged: {claims['error']}"]
    lines = [f"{claims['n_models']} models, {claims['n_pairs']} same-width pairs at "
             f"K = {claims['k']}; 95 % CIs resampling models ({claims['n_boot']} replicates)"]
    for key in ("a", "b"):
        c = claims[key]
        lines.append(f"({key}) {c['claim']}: {c['verdict'].upper()} — {c['statistic']} = "
                     f"{_ci(c['least_favourable'])} (least favourable ends), "
                     f"{_ci(c['most_favourable'])} (most favourable)")
    b = claims["b"]
    lines.append(f"    bound d_fg ≤ 2M·d_LLV: {b['bound_violations']} violations; non-vacuous "
                 f"(2M·d_LLV < 1) for {b['bound_non_vacuous_pairs']} pairs")
    c = claims["c"]
    if "error" in c:
        lines.append(f"(c) {c['claim']}: not judged ({c['error']})")
    else:
        for name in ("d_llv", "d_fg"):
            s = c[name]
            lines.append(f"(c) {c['claim']} in {name}: {s['verdict'].upper()} — "
                         f"{s['statistic']} = {_ci(s['least_favourable'])} (least favourable), "
                         f"{_ci(s['most_favourable'])} (most favourable)")
    return lines
