"""The invariance profile's softmax class: f ↦ A f with g ↦ A⁻ᵀ g + c, for softmax-family pairs.

Known answers (an exact reparametrisation, a temperature, a linear map of f without
the inverse transpose on g, noise, unrelated models), then the parts: the statistic
against its definition, the null, the interval, the sentence, errors, the command.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from repscope.cli.main import app
from repscope.core.errors import InputShapeError
from repscope.inference.profile import CLASS_ORDER, profile


def conditioned(m: int, cond: float, rng: np.random.Generator) -> np.ndarray:
    q1, _ = np.linalg.qr(rng.normal(size=(m, m)))
    q2, _ = np.linalg.qr(rng.normal(size=(m, m)))
    return q1 @ np.diag(np.geomspace(1.0, cond, m)) @ q2


def model(rng: np.random.Generator, n: int = 300, k: int = 40, m: int = 6
          ) -> tuple[np.ndarray, np.ndarray]:
    return rng.normal(size=(n, m)), rng.normal(size=(k, m))


def test_exact_reparametrisation_is_equivalent(rng: np.random.Generator) -> None:
    f, g = model(rng)
    a = conditioned(6, 1e3, rng)
    p = profile(f, f @ a.T, unembeddings=(g, g @ np.linalg.inv(a) + rng.normal(size=6)))
    s = p["softmax"]
    assert s.verdict == "equivalent", s.reason
    assert s.score == pytest.approx(1.0, abs=1e-9) and s.ci[0] > 0.999
    assert set(s.directions) == {"B from A", "A from B"}
    assert s.ceiling == pytest.approx(0.95) and s.null["n_permutations"] == 100
    assert p.verdict("linear") == "equivalent"  # f alone: an invertible linear map
    assert list(p.classes) == [*CLASS_ORDER, "softmax"]
    assert "the softmax family's class (f ↦ A f with g ↦ A⁻ᵀ g): equivalent" in p.sentence


def test_a_linear_map_of_f_without_its_inverse_transpose_on_g_is_not(rng) -> None:
    """The same linear map on f and on g (an orthogonal-invariance reading) changes the
    distribution: linear equivalent, softmax not."""
    f, g = model(rng)
    a = conditioned(6, 30.0, rng)
    p = profile(f, f @ a.T, unembeddings=(g, g @ a.T))
    assert p.verdict("linear") == "equivalent"
    assert p.verdict("softmax") in ("partial", "unrelated"), p["softmax"].reason
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))  # orthogonal: A⁻ᵀ = A, the same class
    assert profile(f, f @ q.T, unembeddings=(g, g @ q.T)).verdict("softmax") == "equivalent"


def test_a_temperature_is_another_distribution(rng: np.random.Generator) -> None:
    f, g = model(rng)
    p = profile(f, f, unembeddings=(g, 2.0 * g))
    assert p.verdict("softmax") == "partial"
    za = f @ (g - g.mean(0)).T  # B's log-odds are 2·za: the difference is za itself
    ss = np.sum(za**2)
    assert p["softmax"].directions["B from A"] == pytest.approx(
        1 - ss / np.sum((2 * za - 2 * za.mean(0)) ** 2), rel=1e-10)  # ≈ 3/4
    assert p["softmax"].directions["A from B"] == pytest.approx(
        1 - ss / np.sum((za - za.mean(0)) ** 2), rel=1e-10)  # ≈ 0
    assert p.verdict("permutation") == "equivalent"  # f is the same


def test_noise_is_partial_and_unrelated_models_are_unrelated(rng: np.random.Generator) -> None:
    f, g = model(rng)
    p = profile(f, f + 0.4 * rng.normal(size=f.shape), unembeddings=(g, g))
    s = p["softmax"]
    assert s.verdict == "partial" and 0 < s.position < 1, s.reason
    assert s.ci[0] <= s.score <= s.ci[1]
    other = profile(f, rng.normal(size=f.shape), unembeddings=(g, rng.normal(size=g.shape)))
    assert other.verdict("softmax") == "unrelated"
    assert other["softmax"].detectable is not None


def test_statistic_matches_its_definition(rng: np.random.Generator) -> None:
    f, g = model(rng, k=25, m=4)
    fb, gb = f + 0.3 * rng.normal(size=f.shape), g + 0.2 * rng.normal(size=g.shape)
    za = f @ (g - g.mean(0)).T  # logits centred over the labels
    zb = fb @ (gb - gb.mean(0)).T
    ss = np.sum((za - zb) ** 2)
    p = profile(f, fb, unembeddings=(g, gb), stats=False)
    d = p["softmax"].directions
    assert d["B from A"] == pytest.approx(1 - ss / np.sum((zb - zb.mean(0)) ** 2), rel=1e-10)
    assert d["A from B"] == pytest.approx(1 - ss / np.sum((za - za.mean(0)) ** 2), rel=1e-10)
    assert p.verdict("softmax") == "undetermined" and "statistics off" in p["softmax"].reason
    # the null: rows of B permuted, the same statistic
    perm = rng.permutation(f.shape[0])
    p2 = profile(f, fb[perm], unembeddings=(g, gb), stats=False)
    zp = zb[perm]
    ref = 1 - np.sum((za - zp) ** 2) / np.sum((zp - zp.mean(0)) ** 2)
    assert p2["softmax"].directions["B from A"] == pytest.approx(ref, rel=1e-10)


def test_other_classes_are_unchanged_without_unembeddings(rng: np.random.Generator) -> None:
    f, g = model(rng)
    y = f @ conditioned(6, 10.0, rng).T
    plain = profile(f, y, n_permutations=40)
    assert list(plain.classes) == list(CLASS_ORDER) and "softmax" not in plain.sentence
    both = profile(f, y, n_permutations=40, unembeddings=(g, g))
    for c in CLASS_ORDER:
        assert both[c].score == plain[c].score


def test_rank_deficient_unembeddings_are_noted(rng: np.random.Generator) -> None:
    f, _ = model(rng)
    g = rng.normal(size=(40, 2)) @ rng.normal(size=(2, 6))  # spans 2 of 6 dimensions
    p = profile(f, f, unembeddings=(g, g))
    assert p.verdict("softmax") == "equivalent"
    assert any("span 2 of its 6 dimensions" in w for w in p["softmax"].warnings)


def test_json_repeated_rows_and_errors(rng: np.random.Generator) -> None:
    f, g = model(rng, n=120)
    idx = np.r_[np.arange(120), np.arange(20)]  # 20 inputs repeated in both
    p = profile(f[idx], f[idx], unembeddings=(g, g))
    assert p.n == 120 and p.verdict("softmax") == "equivalent"
    entry = next(c for c in json.loads(json.dumps(p.to_dict()))["classes"]
                 if c["name"] == "softmax")
    assert entry["weighting"] == "variance-weighted" and "log-odds" in entry["statistic"]
    with pytest.raises(InputShapeError):
        profile(f, f, unembeddings=(g, g[:-1]))
    with pytest.raises(InputShapeError):
        profile(f, f, unembeddings=(g, g[:, :-1]))
    with pytest.raises(InputShapeError):
        profile(f, f, unembeddings=g)


def test_command_takes_unembeddings(tmp_path: Path, rng: np.random.Generator) -> None:
    f, g = model(rng, n=150)
    a = conditioned(6, 100.0, rng)
    arrays = {"fa": f, "fb": f @ a.T, "ga": g, "gb": g @ np.linalg.inv(a)}
    for name, arr in arrays.items():
        np.save(tmp_path / f"{name}.npy", arr)
    res = CliRunner().invoke(app, ["profile", str(tmp_path / "fa.npy"), str(tmp_path / "fb.npy"),
                                   "--unembeddings-a", str(tmp_path / "ga.npy"),
                                   "--unembeddings-b", str(tmp_path / "gb.npy"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert next(c for c in out["classes"] if c["name"] == "softmax")["verdict"] == "equivalent"
    bad = CliRunner().invoke(app, ["profile", str(tmp_path / "fa.npy"), str(tmp_path / "fb.npy"),
                                   "--unembeddings-a", str(tmp_path / "ga.npy")])
    assert bad.exit_code != 0
