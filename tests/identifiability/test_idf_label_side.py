"""The exact label side of d_LLV against the exhaustive (pivot, left-out) search."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from repscope.identifiability import (
    SoftmaxModel,
    circle_model,
    llv_distance,
    permuted_circle_pair,
    perturbed_models,
)
from repscope.identifiability.experiments.synthetic import make_mlp, radial_data
from repscope.identifiability.label_side import exact_label_side, pivot_t1
from repscope.identifiability.model import embed, one_hot_codes


def _terms(la: np.ndarray, lb: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """a_y, b_y of one pivot straight from the definition (+inf where a scale vanishes)."""
    sa = np.std(la - la[:, [p]], axis=0, ddof=1)
    sb = np.std(lb - lb[:, [p]], axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.std(la / sa - lb / sb, axis=0, ddof=1)
        b = np.std(la[:, [p]] / sa - lb[:, [p]] / sb, axis=0, ddof=1)
    bad = (sa == 0) | (sb == 0) | ~np.isfinite(a) | ~np.isfinite(b)
    a[bad] = np.inf
    b[bad] = np.inf
    return a, b


def exhaustive(la: np.ndarray, lb: np.ndarray, reduce: str = "max",
               left_out: int | None = None) -> tuple[float, int, int, np.ndarray]:
    """The reference search: every ordered (pivot, left-out) pair, the first minimum wins.

    Also returns every pivot's best T1 (for telling near-ties apart)."""
    k = la.shape[1]
    best = (np.inf, -1, -1)
    per_pivot = np.full(k, np.inf)
    for p in range(k):
        a, b = _terms(la, lb, p)
        for lo in range(k) if left_out is None else (left_out,):
            if lo == p:
                continue
            keep = np.ones(k, dtype=bool)
            keep[[p, lo]] = False
            vals = np.concatenate([a[keep], b[keep]])
            t1 = float(np.max(vals) if reduce == "max" else np.mean(vals))
            per_pivot[p] = min(per_pivot[p], t1)
            if t1 < best[0]:
                best = (t1, p, lo)
    return best[0], best[1], best[2], per_pivot


def _check(a: SoftmaxModel, b: SoftmaxModel, reduce: str = "max",
           left_out: int | None = None) -> None:
    la, lb = a.log_likelihoods(), b.log_likelihoods()
    t1, p, lo, per_pivot = exhaustive(la, lb, reduce, left_out)
    got = exact_label_side(la, lb, reduce=reduce, left_out=left_out)
    assert got.t1 == pytest.approx(t1, abs=1e-10, rel=1e-10)
    # the per-pivot values from covariances agree with the definition
    est = pivot_t1(la, lb, reduce=reduce, left_out=left_out)
    fin = np.isfinite(per_pivot)
    np.testing.assert_allclose(est[fin], per_pivot[fin], rtol=1e-9, atol=1e-10)
    # the same pair unless another pivot is within rounding of the best
    others = np.delete(per_pivot, p)
    if others.size and np.min(others) > t1 + 1e-9:
        assert (got.pivot, got.left_out) == (p, lo)
    res = llv_distance(a, b, input_set=tuple(range(a.dim + 1)), reduce=reduce,
                       left_out=left_out)
    assert res.t1 == pytest.approx(t1, abs=1e-10, rel=1e-10)


# ------------------------------------------------------------- the paper's settings
@pytest.mark.parametrize("rho", [1.0, 5.0, 20.0])
def test_table1_pairs(rho: float) -> None:
    a, b, _ = permuted_circle_pair(rho, n_per_class=60, seed=0)
    _check(a, b)


@pytest.mark.parametrize("k", [4, 5, 6, 10, 18])
def test_perturbed_constructions(k: int) -> None:
    base = circle_model(k, 20.0, n_per_class=40, min_f_length=5.0, seed=0)
    for step, (_, _, model) in enumerate(perturbed_models(base, 0.05, 40, seed=0)):
        if step in (0, 10, 39):
            _check(base, model)


@pytest.mark.parametrize("k", [4, 6, 10])
def test_width_sweep_networks(k: int) -> None:
    """Untrained radial-classification MLPs of the width sweep (two seeds)."""
    x, _ = radial_data(300, k, seed=1)
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        f_net, g_net = make_mlp(2, 16, 2), make_mlp(k - 1, 16, 2)
        models.append(SoftmaxModel(embed(f_net, x), embed(g_net, one_hot_codes(k))))
    _check(*models)


@pytest.mark.parametrize("k", [4, 6])
def test_trained_width_sweep_networks(k: int) -> None:
    """Two seeds of the width sweep's MLPs after a short training (the experiment's code)."""
    from repscope.identifiability.experiments.synthetic import train_stack

    xtr, ytr = radial_data(400, k, seed=0)
    xte, yte = radial_data(200, k, seed=1)
    res = train_stack([0, 1], xtr, ytr, xte, yte, n_classes=k, width=16, steps=60, lr=3e-3,
                      batch_size=64, log_every=30, eval_every=30)
    _check(SoftmaxModel(res.F_test[0], res.G[0]), SoftmaxModel(res.F_test[1], res.G[1]))


@pytest.mark.parametrize(("k", "m", "noise"), [(3, 1, 0.5), (8, 2, 0.3), (30, 3, 0.1),
                                               (25, 4, 2.0)])
def test_random_pairs(rng: np.random.Generator, k: int, m: int, noise: float) -> None:
    f, g = rng.normal(size=(50, m)), 2 * rng.normal(size=(k, m))
    a = SoftmaxModel(f, g)
    b = SoftmaxModel(f + noise * rng.normal(size=f.shape), g + noise * rng.normal(size=g.shape))
    _check(a, b)
    _check(a, b, reduce="mean")
    _check(a, b, left_out=1)
    _check(a, b, reduce="mean", left_out=k - 1)


def test_equivalent_models_are_exactly_zero(rng: np.random.Generator) -> None:
    a = SoftmaxModel(rng.normal(size=(200, 5)), rng.normal(size=(60, 5)))
    q = rng.normal(size=(5, 5)) + 3 * np.eye(5)
    b = a.transformed(q, shift=rng.normal(size=5))
    got = exact_label_side(a.log_likelihoods(), b.log_likelihoods())
    assert got.t1 < 1e-12
    assert 1 <= got.rechecked <= 16  # every pivot ties at 0: only a few are re-evaluated


def test_torch_path_matches_numpy(rng: np.random.Generator) -> None:
    f, g = rng.normal(size=(80, 3)), rng.normal(size=(40, 3))
    a, b = SoftmaxModel(f, g), SoftmaxModel(f + 0.2 * rng.normal(size=f.shape), g)
    la, lb = a.log_likelihoods(), b.log_likelihoods()
    ref = exact_label_side(la, lb)
    tl, tb = torch.tensor(la), torch.tensor(lb)
    est = pivot_t1(tl, tb)
    assert isinstance(est, torch.Tensor) and est.dtype == torch.float64
    np.testing.assert_allclose(est.numpy(), pivot_t1(la, lb), rtol=1e-12, atol=1e-13)
    got = exact_label_side(tl, tb)
    assert (got.pivot, got.left_out) == (ref.pivot, ref.left_out)
    assert got.t1 == pytest.approx(ref.t1, rel=1e-12)
    via = llv_distance(a, b, input_set=(0, 1, 2, 3), device="cpu")
    assert via.t1 == llv_distance(a, b, input_set=(0, 1, 2, 3)).t1


def test_blocks_do_not_change_the_answer(rng: np.random.Generator,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from repscope.identifiability import label_side

    f, g = rng.normal(size=(70, 3)), rng.normal(size=(33, 3))
    a, b = SoftmaxModel(f, g), SoftmaxModel(f + 0.3 * rng.normal(size=f.shape), g)
    la, lb = a.log_likelihoods(), b.log_likelihoods()
    whole = pivot_t1(la, lb)
    monkeypatch.setattr(label_side, "_BLOCK", 50)  # blocks of 1–2 rows and pivots
    np.testing.assert_allclose(pivot_t1(la, lb), whole, rtol=1e-12)


def test_vanishing_scales_everywhere_raise(rng: np.random.Generator) -> None:
    from repscope.identifiability import DiversityConditionError

    f = np.tile(rng.normal(size=(1, 2)), (20, 1))  # embeddings that do not vary
    a = SoftmaxModel(f, rng.normal(size=(5, 2)), check_diversity=False)
    with pytest.raises(DiversityConditionError, match="σ_y = 0"):
        exact_label_side(a.log_likelihoods(), a.log_likelihoods())


def test_row_blocks_above_the_full_gram_limit(rng: np.random.Generator,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Above _FULL_GRAM labels only the needed rows of the covariances are formed."""
    from repscope.identifiability import label_side

    f, g = rng.normal(size=(90, 3)), rng.normal(size=(50, 3))
    a, b = SoftmaxModel(f, g), SoftmaxModel(f + 0.3 * rng.normal(size=f.shape), g)
    la, lb = a.log_likelihoods(), b.log_likelihoods()
    whole = pivot_t1(la, lb)
    monkeypatch.setattr(label_side, "_FULL_GRAM", 10)
    monkeypatch.setattr(label_side, "_BLOCK", 400)
    np.testing.assert_allclose(pivot_t1(la, lb), whole, rtol=1e-10)
    ref = exhaustive(la, lb)
    assert exact_label_side(la, lb).t1 == pytest.approx(ref[0], abs=1e-12)
    tl = torch.tensor(la)
    np.testing.assert_allclose(pivot_t1(tl, torch.tensor(lb)).numpy(), whole, rtol=1e-10)


def test_memory_is_bounded(rng: np.random.Generator) -> None:
    """Peak extra memory of the label side: O(K² + n·K), no n × K × K (here 2 GB) array."""
    import tracemalloc

    n, k = 400, 800
    f, g = rng.normal(size=(n, 4)), rng.normal(size=(k, 4))
    la = SoftmaxModel(f, g).log_likelihoods()
    lb = SoftmaxModel(f + 0.2 * rng.normal(size=f.shape), g).log_likelihoods()
    tracemalloc.start()
    try:
        exact_label_side(la, lb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    from repscope.identifiability.label_side import _BLOCK

    block = min(k * k, (_BLOCK // k) * k)  # pivots × labels of one block
    assert peak < 8 * (6 * k * k + 6 * n * k + 30 * block)  # float64 arrays
    assert peak < n * k * k * 8 / 20  # far below one n × K × K array (2 GB here)
