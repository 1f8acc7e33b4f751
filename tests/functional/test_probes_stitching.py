from __future__ import annotations

import numpy as np
import pytest
import torch

import repscope
from repscope.inference.intervals import wilson_interval
from repscope.probing.probes import (
    fit_probe,
    majority_rate,
    probe_agreement,
    probe_grid,
    split_indices,
)
from repscope.probing.stitching import stitch, stitching_matrix
from repscope.zoo.digits import DigitsMLP, accuracy, load_digits_data, train_digits_mlp


@pytest.fixture(scope="module")
def digits():
    torch.set_num_threads(2)
    data = load_digits_data()
    a = train_digits_mlp(data, widths=(32, 32), seed=0, epochs=15)
    b = train_digits_mlp(data, widths=(48, 24), seed=1, epochs=15)
    return data, a, b


def test_trained_nets_are_accurate(digits) -> None:
    data, a, b = digits
    assert accuracy(a, data.x_test, data.y_test) > 0.9
    assert accuracy(b, data.x_test, data.y_test) > 0.9


def test_probe_separates_informative_from_noise() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=300)
    informative = np.eye(3)[y] * 3 + rng.normal(size=(300, 3))
    noise = rng.normal(size=(300, 3))
    good, bad = fit_probe(informative, y), fit_probe(noise, y)
    assert good.accuracy > 0.9
    assert bad.accuracy < 0.6
    assert 0 <= probe_agreement(good, bad) <= 1
    assert probe_agreement(good, good) == 1.0


def test_probe_chance_line_and_interval() -> None:
    """chance is the majority-class rate of the held-out labels; the interval is Wilson's."""
    import json

    rng = np.random.default_rng(1)
    y = np.repeat([0, 1, 2, 3], [140, 40, 15, 5])  # 70 % / 20 % / 7.5 % / 2.5 %
    rng.shuffle(y)
    x = rng.normal(size=(200, 4)) + 0.8 * np.eye(4)[y]
    res = fit_probe(x, y, seed=3)
    _, test = split_indices(200, 0.3, seed=3)
    np.testing.assert_array_equal(res.test_index, test)
    expected = np.bincount(y[test]).max() / test.size
    assert res.chance == expected == majority_rate(y[test])
    assert res.chance != np.bincount(y).max() / y.size  # the held-out split's rate, not all
    assert res.n_classes == 4 and res.n_test == test.size == 60
    lo, hi = res.accuracy_interval()
    assert lo < res.accuracy < hi
    assert (lo, hi) == wilson_interval(round(res.accuracy * 60), 60)
    rec = res.to_record()
    assert json.loads(json.dumps(rec, allow_nan=False)) == rec
    assert rec == {"accuracy": res.accuracy, "ci_low": lo, "ci_high": hi,
                   "chance": expected, "n_classes": 4, "n_test": 60}
    narrow = res.to_record(level=0.5)
    assert lo < narrow["ci_low"] < narrow["ci_high"] < hi
    noise = fit_probe(rng.normal(size=(200, 4)), y, seed=3)
    assert noise.accuracy_interval()[0] <= noise.chance + 0.05  # noise is not above chance


def test_majority_rate() -> None:
    assert majority_rate([2, 2, 1, 0, 2]) == 0.6
    assert majority_rate(np.array(["a", "b"])) == 0.5
    with pytest.raises(repscope.InputShapeError):
        majority_rate([])


def test_probe_errors() -> None:
    with pytest.raises(repscope.InputShapeError, match="labels"):
        fit_probe(np.zeros((10, 2)) + np.arange(10)[:, None], np.zeros(9))
    with pytest.raises(repscope.InputShapeError, match="single class"):
        fit_probe(np.arange(20.0).reshape(10, 2), np.zeros(10))


def test_probe_grid_and_agreement_on_digits(digits) -> None:
    data, a, b = digits
    grid = probe_grid({("x", "in"): data.x_test, ("x", "noise"): np.random.default_rng(0).normal(
        size=data.x_test.shape)}, data.y_test)
    assert grid[("x", "in")].accuracy > 0.85 > grid[("x", "noise")].accuracy


def test_self_stitching_is_identity(digits) -> None:
    data, a, _ = digits
    res = stitch(a, "layer1", a, "layer1", data.x_train, data.y_train, data.x_test, data.y_test)
    assert res.fit_r2 == pytest.approx(1.0, abs=1e-6)
    assert res.relative_accuracy == pytest.approx(1.0)


def test_stitching_through_a_bottleneck_fails(digits) -> None:
    data, _, b = digits
    torch.manual_seed(0)
    narrow = DigitsMLP((1,), n_in=64, n_classes=10)  # untrained 1-unit layer carries ~nothing
    res = stitch(narrow, "layer1", b, "layer1", data.x_train, data.y_train, data.x_test,
                 data.y_test)
    assert res.relative_accuracy < 0.5


def test_stitching_matrix_and_finetune(digits) -> None:
    data, a, b = digits
    mat = stitching_matrix(a, ["layer1", "layer2"], b, ["layer1", "layer2"], data.x_train,
                           data.y_train, data.x_test, data.y_test)
    assert mat.shape == (2, 2) and np.all(mat > 0.8)
    tuned = stitch(a, "layer2", b, "layer1", data.x_train, data.y_train, data.x_test,
                   data.y_test, finetune_steps=50)
    assert tuned.finetuned and tuned.accuracy > 0.8
    b_before = [p.detach().clone() for p in b.parameters()]
    stitch(a, "layer1", b, "layer2", data.x_train, data.y_train, data.x_test, data.y_test,
           finetune_steps=5)
    assert all(torch.equal(p, q) for p, q in zip(b.parameters(), b_before))  # B stays frozen
    assert all(p.requires_grad for p in b.parameters())  # and its flags are restored


def test_unknown_layer(digits) -> None:
    data, a, b = digits
    with pytest.raises(repscope.RepscopeError, match="did you mean layer1"):
        stitch(a, "layer11", b, "layer1", data.x_train, data.y_train, data.x_test, data.y_test)
