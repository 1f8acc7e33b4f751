"""Synthetic width sweep and perturbed-model experiments, end to end on tiny settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from repscope.cli.main import app
from repscope.core.errors import InvalidParameterError, RepscopeError
from repscope.identifiability.experiments import width_sweep as ws
from repscope.identifiability.experiments.perturbed import run_perturbed, summarize_perturbed
from repscope.identifiability.experiments.synthetic import (
    StackedMLP,
    make_mlp,
    radial_data,
    radial_labels,
    train_stack,
)

TINY = {"widths": (4, 16), "seeds": 3, "steps": 80, "lr": 3e-3, "n_train": 400,
        "n_test": 150, "n_candidates": 20, "min_seeds": 2, "eval_every": 50, "log_every": 40}


def test_radial_labels_by_hand() -> None:
    deg = np.deg2rad([10.0, 50.0, 100.0, 170.0, -80.0, 180.0 + 10.0])
    x = np.c_[np.cos(deg), np.sin(deg)] * 2.0
    # K = 4 bins of 45°: 10°→0, 50°→1, 100°→2, 170°→3, -80° reflects to 100°→2, 190°→10°→0
    np.testing.assert_array_equal(radial_labels(x, 4), [0, 1, 2, 3, 2, 0])
    xs, ys = radial_data(4000, 6, seed=0)
    assert xs.dtype == np.float32 and xs.std() == pytest.approx(3.0, rel=0.05)
    counts = np.bincount(ys, minlength=6) / 4000
    assert np.all(np.abs(counts - 1 / 6) < 0.03)
    with pytest.raises(InvalidParameterError):
        radial_labels(x, 1)


def test_mlp_shape_and_stacking() -> None:
    torch.manual_seed(0)
    members = [make_mlp(3, 8, 2) for _ in range(3)]
    assert members[0][-1].bias is None
    stack = StackedMLP(members)
    x = torch.randn(5, 3)
    out = stack(x)
    assert out.shape == (3, 5, 2)
    for i, mem in enumerate(members):
        torch.testing.assert_close(out[i], mem(x))
        torch.testing.assert_close(stack.member(i)(x), mem(x))
    normed = StackedMLP(members, fix_length=20.0)(x)
    torch.testing.assert_close(normed.norm(dim=-1), torch.full((3, 5), 20.0))


def test_stacked_training_equals_training_alone() -> None:
    torch.manual_seed(123)
    xtr, ytr = radial_data(300, 4, 0)
    xte, yte = radial_data(100, 4, 1)
    kw = {"n_classes": 4, "width": 8, "steps": 30, "lr": 1e-2, "batch_size": 32,
          "log_every": 10, "eval_every": 15}
    together = train_stack([0, 1], xtr, ytr, xte, yte, **kw)
    alone = train_stack([1], xtr, ytr, xte, yte, **kw)
    np.testing.assert_allclose(together.F_test[1], alone.F_test[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(together.G[1], alone.G[0], rtol=1e-4, atol=1e-5)
    assert together.train_loss_log.shape == (3, 2) and together.test_loss_log.shape == (2, 2)
    assert not np.allclose(together.F_test[0], together.F_test[1])


def test_width_sweep_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary, pairs = ws.run_width_sweep(tmp_path, "quick", progress=False, device="cpu", **TINY)
    assert len(pairs) == 2 * 3 and set(pairs.width) == {4, 16}
    for name in ("seeds.csv", "pairs.csv", "summary.csv", "config.json", "fig3_right.png",
                 "fig3_right.svg", "fig16_right.png", "fig16_right.svg"):
        assert (tmp_path / name).is_file(), name
    assert len(list((tmp_path / "models").glob("*.npz"))) == 6
    assert len(list((tmp_path / "models").glob("*.pt"))) == 6
    ok = pairs[pairs.d_llv.notna()]
    assert len(ok) >= 3
    # the bound holds on trained models
    assert np.all(ok.d_fg <= 2 * ok.d_llv + 1e-9)
    assert set(summary.columns) >= {"width", "n_pairs", "mean_d_llv", "sd_d_llv", "mean_d_fg",
                                    "sd_d_fg", "mean_kl"}
    # resumable: nothing is trained or compared again
    before = (tmp_path / "pairs.csv").read_text()

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("retrained a finished model")

    monkeypatch.setattr(ws, "train_stack", boom)
    ws.run_width_sweep(tmp_path, "quick", progress=False, device="cpu", **TINY)
    assert (tmp_path / "pairs.csv").read_text() == before
    # a run with other training settings refuses to mix results
    with pytest.raises(RepscopeError, match="other settings"):
        ws.run_width_sweep(tmp_path, "quick", progress=False, **{**TINY, "steps": 10})


def test_width_sweep_cli_json(tmp_path: Path) -> None:
    args = ["paper", "width-sweep", "--out", str(tmp_path), "--widths", "8", "--seeds", "2",
            "--steps", "40", "--lr", "3e-3", "--n-train", "300", "--n-test", "120",
            "--n-candidates", "10", "--min-seeds", "1", "--threads", "1", "--json",
            "--no-progress"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert len(rows) == 1
    assert {"width", "n_pairs", "mean_d_llv", "sd_d_llv", "mean_d_fg", "sd_d_fg",
            "mean_kl"} <= set(rows[0])
    assert rows[0]["width"] == 8
    bad = CliRunner().invoke(app, ["paper", "width-sweep", "--preset", "huge"])
    assert isinstance(bad.exception, InvalidParameterError)


def test_sweep_config_validation() -> None:
    with pytest.raises(InvalidParameterError):
        ws.run_width_sweep("unused", "quick", seeds=1)
    with pytest.raises(InvalidParameterError):
        ws.run_width_sweep("unused", "quick", classes=(3,))
    with pytest.raises(InvalidParameterError):
        ws.run_width_sweep("unused", "nope")


def test_perturbed_end_to_end(tmp_path: Path) -> None:
    df = run_perturbed(tmp_path, classes=(4,), steps=8, n_per_class=40, n_candidates=10,
                       noise={4: 0.05}, progress=False)
    assert list(df.step) == list(range(8))
    assert df.scale.to_list() == pytest.approx([0.05 * (i + 1) for i in range(8)])
    assert len(set(df.input_set)) == 1  # the step-0 input set is reused
    assert np.all(df.d_fg <= 2 * df.d_llv + 1e-12)
    assert df.d_llv.iloc[-1] > df.d_llv.iloc[0]
    assert (tmp_path / "fig16_left.png").is_file() and (tmp_path / "fig16_left.svg").is_file()
    more = run_perturbed(tmp_path, classes=(4,), steps=10, n_per_class=40, n_candidates=10,
                         noise={4: 0.05}, progress=False)
    assert len(pd.read_csv(tmp_path / "pairs.csv")) == 10 and len(more) == 10
    summ = summarize_perturbed(more)
    assert summ[0]["n_pairs"] == 10 and summ[0]["violations_2m"] == 0
    with pytest.raises(InvalidParameterError):
        run_perturbed(tmp_path / "x", classes=(7,), steps=1, progress=False)


@pytest.mark.slow
def test_quick_preset_shows_falling_trend(tmp_path: Path) -> None:
    """The quick preset (minutes on 2 CPU cores): d_LLV and d_{f,g} fall with width."""
    torch.set_num_threads(2)
    summary, pairs = ws.run_width_sweep(tmp_path, "quick", progress=False, device="cpu")
    s = summary.sort_values("width")
    assert s.n_pairs.min() > 0
    first, last = s.iloc[0], s.iloc[-1]
    assert last.mean_d_llv < first.mean_d_llv
    assert last.mean_d_fg < first.mean_d_fg
    assert np.all(pairs.d_fg <= 2 * pairs.d_llv + 1e-9)
    assert (tmp_path / "fig3_right.png").is_file() and (tmp_path / "fig16_right.svg").is_file()
