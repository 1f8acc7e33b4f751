"""Constructions (§3, App. F.6) and Table 1 reproduced through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from repscope.cli.main import app
from repscope.core.errors import InvalidParameterError
from repscope.identifiability import circle_model, permuted_circle_pair, perturbed_models
from repscope.identifiability.constructions import PAPER_PERMUTATION


def test_paper_permutation_is_2k_plus_5_mod_7() -> None:
    assert PAPER_PERMUTATION == tuple((2 * k + 5) % 7 for k in range(7))


def test_permuted_pair_classifies_identically() -> None:
    a, b, labels = permuted_circle_pair(3.0, n_per_class=20, seed=1)
    assert a.n_inputs == b.n_inputs == 140 and a.n_labels == 7 and a.dim == 2
    np.testing.assert_array_equal(a.predict(), labels)
    np.testing.assert_array_equal(b.predict(), labels)
    np.testing.assert_allclose(np.linalg.norm(a.G, axis=1), 3.0)
    norms = np.linalg.norm(a.F, axis=1)
    assert norms.min() >= 2.0 and norms.max() < 2.1
    np.testing.assert_allclose(np.linalg.norm(b.F, axis=1), norms)  # lengths are shared
    # model 2 puts class k at angle θ_π(k)
    ang = np.angle(b.G[:, 0] + 1j * b.G[:, 1]) % (2 * np.pi)
    np.testing.assert_allclose(ang, 2 * np.pi * np.array(PAPER_PERMUTATION) / 7, atol=1e-12)


def test_kl_decays_with_rho() -> None:
    from repscope.identifiability import kl_divergence

    kls = [kl_divergence(*permuted_circle_pair(r, n_per_class=50)[:2]).forward
           for r in (5.0, 10.0, 20.0)]
    assert kls[0] > kls[1] > kls[2] > 0


def test_other_class_counts_and_errors() -> None:
    a, b, _ = permuted_circle_pair(2.0, n_classes=5, n_per_class=5)
    assert a.n_labels == 5
    with pytest.raises(InvalidParameterError):
        permuted_circle_pair(2.0, permutation=(0, 1, 2))
    with pytest.raises(InvalidParameterError):
        permuted_circle_pair(0.0)
    with pytest.raises(InvalidParameterError):
        circle_model(2, 1.0)


def test_perturbed_models() -> None:
    base = circle_model(4, 20.0, n_per_class=10, min_f_length=5.0)
    out = list(perturbed_models(base, 0.1, 3, seed=0))
    assert [s for s, _, _ in out] == [0, 1, 2]
    assert [sc for _, sc, _ in out] == pytest.approx([0.1, 0.2, 0.3])
    for _, scale, m in out:
        np.testing.assert_array_equal(m.G, base.G)
        assert 0 < np.std(m.F - base.F) < 2 * scale
    with pytest.raises(InvalidParameterError):
        next(perturbed_models(base, 0.0))


def test_table1_reproduces_the_reference_numbers(tmp_path: Path) -> None:
    """Expected values of the issue (authors' code): KL 0.788 (ρ=1), ≈1.06 (ρ=2),
    0.0197 (ρ=10), ≈2.7e-5 (ρ=20); d_LLV ≈ 1.3175; m_CCA(f) < 0.002; d_SVD(f) > 0.999."""
    res = CliRunner().invoke(app, ["paper", "table1", "--out", str(tmp_path), "--rho",
                                   "1,2,10,20", "--json", "--no-progress"])
    assert res.exit_code == 0, res.output
    rows = {r["rho"]: r for r in json.loads(res.stdout)}
    assert set(rows) == {1.0, 2.0, 10.0, 20.0}
    assert all(set(r) == {"rho", "kl", "d_llv", "m_cca_f", "d_svd_f"} for r in rows.values())
    assert rows[1.0]["kl"] == pytest.approx(0.788, abs=0.005)
    assert rows[2.0]["kl"] == pytest.approx(1.057, abs=0.01)
    assert rows[10.0]["kl"] == pytest.approx(0.0197, rel=0.05)
    assert rows[20.0]["kl"] == pytest.approx(2.7e-5, rel=0.2)
    for r in rows.values():
        assert r["d_llv"] == pytest.approx(1.3175, abs=0.002)
        assert r["m_cca_f"] < 0.002
        assert r["d_svd_f"] > 0.999
    for name in ("table1.csv", "table1.png", "table1.svg", "config.json"):
        assert (tmp_path / name).is_file()
    # resumable: a second run computes nothing new and adds ρ = 3 only
    again = CliRunner().invoke(app, ["paper", "table1", "--out", str(tmp_path), "--rho",
                                     "1,3", "--json", "--no-progress"])
    assert again.exit_code == 0
    import pandas as pd

    table = pd.read_csv(tmp_path / "table1.csv")
    assert sorted(table["rho"]) == [1.0, 2.0, 3.0, 10.0, 20.0]
    assert [r["rho"] for r in json.loads(again.stdout)] == [1.0, 3.0]
