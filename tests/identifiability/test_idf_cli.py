"""``repscope llv`` on saved arrays and the compare_models helper."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from repscope.cli.main import app
from repscope.identifiability import DatasetNotFoundError, SoftmaxModel, compare_models


def _save(tmp_path: Path, rng: np.random.Generator, equivalent: bool) -> list[str]:
    f, g = rng.normal(size=(80, 2)), rng.normal(size=(6, 2)) * 2
    if equivalent:
        A = np.array([[1.5, 0.3], [-0.7, 0.8]])
        f2, g2 = f @ A.T, g @ np.linalg.inv(A) + np.array([2.0, -1.0])
    else:
        f2, g2 = f + 0.4 * rng.normal(size=f.shape), g
    paths = []
    for name, arr in (("a_f", f), ("a_g", g), ("b_f", f2), ("b_g", g2)):
        p = tmp_path / f"{name}.npy"
        np.save(p, arr)
        paths.append(str(p))
    return paths


def test_llv_json_for_equivalent_models(tmp_path: Path, rng: np.random.Generator) -> None:
    res = CliRunner().invoke(app, ["llv", *_save(tmp_path, rng, True), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["d_llv"] < 1e-8 and out["d_fg"] < 1e-8 and out["kl"] < 1e-10
    assert out["m_cca_f"] == pytest.approx(1.0)
    assert {"t1", "t2", "t3", "t4", "pivot", "left_out", "input_set", "d_svd_f", "d_svd_g",
            "m_svd_f", "kl_reverse", "m_cca_g"} <= set(out)


def test_llv_table_and_fixed_input_set(tmp_path: Path, rng: np.random.Generator) -> None:
    paths = _save(tmp_path, rng, False)
    res = CliRunner().invoke(app, ["llv", *paths, "--input-set", "4,7,9"])
    assert res.exit_code == 0, res.output
    assert "d_LLV" in res.stdout and "4, 7, 9" in res.stdout and "bound check" in res.stdout
    js = json.loads(CliRunner().invoke(app, ["llv", *paths, "--input-set", "4,7,9",
                                             "--json"]).stdout)
    assert js["input_set"] == [4, 7, 9] and js["searched"] is False
    assert js["d_fg"] <= 2 * js["d_llv"]


def test_llv_cli_errors(tmp_path: Path, rng: np.random.Generator) -> None:
    paths = _save(tmp_path, rng, False)
    res = CliRunner().invoke(app, ["llv", paths[0], paths[1], paths[2],
                                   str(tmp_path / "missing.npy")])
    assert isinstance(res.exception, DatasetNotFoundError)
    (tmp_path / "bad.npy").write_text("not an array")
    res = CliRunner().invoke(app, ["llv", paths[0], paths[1], paths[2], str(tmp_path / "bad.npy")])
    assert res.exit_code != 0 and res.exception is not None


def test_compare_models_reports_degenerate_g_side(rng: np.random.Generator) -> None:
    a = SoftmaxModel(rng.normal(size=(40, 3)), rng.normal(size=(4, 3)))
    b = SoftmaxModel(a.F + 0.1 * rng.normal(size=a.F.shape), a.G)
    out = compare_models(a, b, n_candidates=5)
    assert 0 <= out["m_cca_f"] <= 1
    assert "m_cca_g_warning" in out  # 3 features on 4 labels: CCA is degenerate
    assert out["d_fg"] is None and "K-2 >= M" in out["d_fg_error"]
    assert out["d_llv"] > 0


def _save_large(tmp_path: Path, rng: np.random.Generator, equivalent: bool) -> list[str]:
    """K = 300 labels, M = 16: C(298, 16) label subsets, far beyond enumeration."""
    m = 16
    f, g = rng.normal(size=(400, m)), rng.normal(size=(300, m)) / 2
    if equivalent:
        q1, _ = np.linalg.qr(rng.normal(size=(m, m)))
        q2, _ = np.linalg.qr(rng.normal(size=(m, m)))
        A = q1 @ np.diag(np.geomspace(1.0, 1e3, m)) @ q2
        f2, g2 = f @ A.T, g @ np.linalg.inv(A) + rng.normal(size=m)
    else:
        f2, g2 = f + 0.3 * rng.normal(size=f.shape), g
    paths = []
    for name, arr in (("a_f", f), ("a_g", g), ("b_f", f2), ("b_g", g2)):
        p = tmp_path / f"{name}.npy"
        np.save(p, arr)
        paths.append(str(p))
    return paths


def test_llv_large_equivalent_pair_is_zero_everywhere(tmp_path: Path,
                                                     rng: np.random.Generator) -> None:
    res = CliRunner().invoke(app, ["llv", *_save_large(tmp_path, rng, True), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["kl"] < 1e-8 and out["d_llv"] < 1e-8 and out["d_llv_lower"] < 1e-8
    assert out["d_fg_lower"] < 1e-8 and out["d_fg_upper"] < 1e-8 and out["d_fg_exact"]
    assert out["m_cca_f"] == pytest.approx(1.0, abs=1e-8)
    assert out["bound_check"]["falsified"] is False


def test_llv_reports_the_interval_and_its_search(tmp_path: Path,
                                                 rng: np.random.Generator) -> None:
    paths = _save_large(tmp_path, rng, False)
    res = CliRunner().invoke(app, ["llv", *paths, "--budget", "300", "--n-candidates", "20"])
    assert res.exit_code == 0, res.output
    assert "d_fg is an interval" in res.stdout and "budget 300" in res.stdout
    assert "d_LLV input side: random search: the best of 20 candidate" in res.stdout
    assert "only side that could falsify" in res.stdout
    js = json.loads(CliRunner().invoke(app, ["llv", *paths, "--budget", "300", "--json",
                                             "--n-candidates", "20"]).stdout)
    assert js["d_fg_lower"] <= js["d_fg_upper"] <= 2 * js["d_llv"] + 1e-12
    assert js["d_llv_lower"] <= js["d_llv"] and js["label_side"] == "exact"
