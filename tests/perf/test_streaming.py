"""Exactness of streamed and merged statistics (repscope.engine.streaming); nothing is timed."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import repscope
from repscope import SecondMoments
from repscope.core.errors import (
    DegeneracyWarning,
    DegenerateInputError,
    InputShapeError,
    InputValueError,
    InvalidParameterError,
)
from repscope.engine import streaming
from repscope.engine.streaming import JointMoments

MOMENT_MEASURES = [
    ("cka", {}),
    ("hsic", {}),
    ("mean_cca", {}),
    ("mean_sq_cca", {}),
    ("svcca", {"var_fraction": 0.9}),
    ("pwcca", {}),
    ("ridge_cca", {}),
    ("procrustes", {}),
    ("procrustes_angular", {}),
    ("nbs", {}),
    ("bures_distance", {}),
    ("shape_metric", {"alpha": 0.5}),
    ("linear_regression", {}),
]


def _pair(rng: np.random.Generator, n: int = 600, dx: int = 12, dy: int = 9):
    z = rng.normal(size=(n, 5))
    x = z @ rng.normal(size=(5, dx)) + 0.7 * rng.normal(size=(n, dx)) + 40.0
    y = np.tanh(z @ rng.normal(size=(5, dy))) + 0.5 * rng.normal(size=(n, dy)) - 3.0
    return x, y


def _direct(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xc, yc = x - x.mean(0), y - y.mean(0)
    return xc.T @ xc, yc.T @ yc, xc.T @ yc


def _value(name: str, params: dict, *args) -> float:
    m = repscope.measure(name, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegeneracyWarning)
        if len(args) == 1:
            return float(m.from_moments(args[0]))
        return m(*args)


# ------------------------------------------------------------------ exactness
@pytest.mark.parametrize(("name", "params"), MOMENT_MEASURES)
def test_streamed_value_equals_full_data(rng, name, params):
    x, y = _pair(rng)
    mom = streaming.moments(x, y, chunk_size=97, precision="float64")
    assert mom.n == x.shape[0] and mom.precision == "float64"
    assert _value(name, params, mom) == pytest.approx(_value(name, params, x, y), rel=1e-10,
                                                      abs=1e-12)


def test_statistics_equal_direct_formulas(rng):
    x, y = _pair(rng)
    mom = streaming.moments(x, y, chunk_size=50)
    sxx, syy, sxy = _direct(x, y)
    np.testing.assert_allclose(mom.mean_x, x.mean(0), rtol=1e-13)
    np.testing.assert_allclose(mom.sxx, sxx, rtol=1e-11, atol=1e-9)
    np.testing.assert_allclose(mom.syy, syy, rtol=1e-11, atol=1e-9)
    np.testing.assert_allclose(mom.sxy, sxy, rtol=1e-11, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(4, 80),
    cuts=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=4),
    seed=st.integers(0, 2**16),
    offset=st.floats(-1e5, 1e5),
)
def test_merge_of_partitions_equals_single_pass(n, cuts, seed, offset):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 3)) * 2 + offset
    b = rng.normal(size=(n, 2)) + a[:, :2]
    c = rng.normal(size=(n, 4))
    idx = sorted({int(f * n) for f in cuts} | {0, n})
    parts = [
        JointMoments.from_arrays(a[i:j], b[i:j], c[i:j]) for i, j in zip(idx, idx[1:]) if j > i
    ]
    merged = parts[0]
    for p in parts[1:]:
        merged = merged + p
    single = JointMoments.from_arrays(a, b, c)
    z = np.concatenate([a, b, c], axis=1)
    zc = z - z.mean(0)
    assert merged.n == single.n == n
    scale = max(1.0, float(np.abs(zc).max()) ** 2)
    np.testing.assert_allclose(merged.s, zc.T @ zc, atol=1e-9 * scale * n, rtol=1e-9)
    np.testing.assert_allclose(single.s, zc.T @ zc, atol=1e-9 * scale * n, rtol=1e-9)
    np.testing.assert_allclose(merged.mean, z.mean(0), rtol=1e-12, atol=1e-9 * max(1, abs(offset)))


def test_merge_is_order_independent_and_does_not_mutate(rng):
    x, y = _pair(rng, n=90)
    a = JointMoments.from_arrays(x[:30], y[:30])
    b = JointMoments.from_arrays(x[30:], y[30:])
    before = a.s.copy()
    ab, ba = a.merge(b), b.merge(a)
    np.testing.assert_allclose(ab.s, ba.s, rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(a.s, before)
    empty = JointMoments.empty(a.widths)
    np.testing.assert_allclose((empty + a).s, a.s)


def test_joint_blocks_give_every_pair(rng):
    x, y = _pair(rng, n=300)
    w = rng.normal(size=(300, 4))
    jm = streaming.joint_moments([x, y, w], chunk_size=64)
    assert jm.widths == (12, 9, 4) and jm.k == 3
    for (i, a), (j, b) in [((0, x), (1, y)), ((0, x), (2, w)), ((2, w), (1, y))]:
        ref = SecondMoments.from_arrays(a, b)
        mom = jm.pair(i, j)
        np.testing.assert_allclose(mom.sxy, ref.sxy, rtol=1e-11, atol=1e-9)
        np.testing.assert_allclose(mom.sxx, ref.sxx, rtol=1e-11, atol=1e-9)
        np.testing.assert_allclose(mom.mean_y, ref.mean_y, rtol=1e-12)
    values = jm.evaluate(["cka", "procrustes"])
    assert set(values) == {(0, 1), (0, 2), (1, 2)}
    assert values[(0, 2)]["cka"] == pytest.approx(repscope.measure("cka")(x, w), rel=1e-10)
    assert values[(1, 2)]["procrustes"] == pytest.approx(
        repscope.measure("procrustes")(y, w), rel=1e-10
    )


# -------------------------------------------------------------------- sources
def test_npy_files_memmaps_zarr_and_torch_give_the_same_statistics(rng, tmp_path):
    zarr = pytest.importorskip("zarr")
    x, y = _pair(rng, n=500)
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    np.save(tmp_path / "x.npy", x32)
    np.save(tmp_path / "y.npy", y32)
    np.save(tmp_path / "xf.npy", np.asfortranarray(x32))
    z = zarr.open_array(tmp_path / "y.zarr", mode="w", shape=y32.shape, chunks=(64, 9),
                        dtype="float32")
    z[:] = y32
    ref = SecondMoments.from_arrays(x32, y32)
    sources = [
        (str(tmp_path / "x.npy"), tmp_path / "y.npy"),
        (np.load(tmp_path / "x.npy", mmap_mode="r"), z),
        (tmp_path / "xf.npy", torch.from_numpy(y32)),
    ]
    for sx, sy in sources:
        mom = streaming.moments(sx, sy, chunk_size=77, precision="float64")
        np.testing.assert_allclose(mom.sxy, ref.sxy, rtol=1e-10, atol=1e-8)
        np.testing.assert_allclose(mom.syy, ref.syy, rtol=1e-10, atol=1e-8)
    # default chunking of a Zarr source follows its chunk rows
    chunks = list(streaming.iter_chunks([z]))
    assert all(c[0].shape[0] % 64 == 0 for c in chunks[:-1])


def test_batches_from_a_forward_pass(rng):
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 5))
    data = torch.from_numpy(rng.normal(size=(400, 6)).astype(np.float32))

    def forward_batches():
        with torch.no_grad():
            for i in range(0, 400, 33):
                h1 = net[1](net[0](data[i : i + 33]))
                yield h1, net[2](h1)

    jm = streaming.joint_moments(forward_batches(), precision="float64", progress=True, total=400)
    assert isinstance(jm.s, torch.Tensor) and jm.s.dtype == torch.float64
    with torch.no_grad():
        h1 = net[1](net[0](data))
        out = net[2](h1)
    want = repscope.measure("mean_cca")(h1.double().numpy(), out.double().numpy())
    got = float(repscope.measure("mean_cca").from_moments(jm.pair(0, 1)))
    assert got == pytest.approx(want, rel=1e-9)


def test_compute_single_and_several_measures(rng):
    x, y = _pair(rng)
    one = streaming.compute("cka", x, y, chunk_size=128)
    assert one == pytest.approx(repscope.measure("cka")(x, y), rel=1e-10)
    many = streaming.compute(["cka", repscope.measure("shape_metric", alpha=0.5)], x, y)
    assert set(many) == {"cka", "shape_metric(alpha=0.5)"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegeneracyWarning)
        assert many["shape_metric(alpha=0.5)"] == pytest.approx(
            repscope.measure("shape_metric", alpha=0.5)(x, y), rel=1e-10
        )


# ------------------------------------------------------------ mixed precision
def test_mixed_precision_cka_at_realistic_scale_within_1e6(rng):
    """float32 GEMMs with float64 accumulation vs the float64 answer on the same values."""
    n, d = 40_000, 256
    base = rng.normal(size=(n, 32)).astype(np.float32)
    x = (base @ rng.normal(size=(32, d)).astype(np.float32)
         + rng.normal(size=(n, d)).astype(np.float32) + 100.0)
    y = np.tanh(x[:, :128] / 10.0).astype(np.float32) * 5.0 + x[:, 128:] - 30.0
    exact = SecondMoments.from_arrays(x, y)
    for chunk in (streaming.default_chunk_rows([d, d]), 12_345):
        mom = streaming.moments(x, y, chunk_size=chunk, measures="cka")
        assert mom.precision == "mixed"
        for name in ("cka", "nbs", "hsic"):
            m = repscope.measure(name)
            a, b = float(m.from_moments(mom)), float(m.from_moments(exact))
            assert abs(a - b) <= 1e-7 * max(1.0, abs(b)), (name, chunk, a - b)


def test_auto_precision_rules(rng):
    x, y = _pair(rng, n=200)
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    assert streaming.moments(x32, y32).precision == "float64"  # no measures named
    assert streaming.moments(x32, y32, measures=["cka", "nbs"]).precision == "mixed"
    assert streaming.moments(x32, y32, measures=["cka", "mean_cca"]).precision == "float64"
    assert streaming.moments(x, y, measures="cka").precision == "float64"  # float64 data
    assert streaming.moments(x, y32, precision="mixed").precision == "float64"
    mixed = streaming.moments(x32, y32, precision="mixed")
    with pytest.raises(DegenerateInputError, match="precision='float64'"):
        repscope.measure("mean_cca").from_moments(mixed)
    with pytest.raises(DegenerateInputError):
        repscope.measure("procrustes").from_moments(mixed)
    merged = streaming.moments(x32, y32, precision="float64").merge(mixed)
    assert merged.precision == "mixed"


def test_mixed_chunk_corrects_float32_mean_rounding(rng):
    # offset 1e4: fl32(mean) differs from the float64 mean by ~1e-4 per column
    x = (rng.normal(size=(3000, 4)) + 1e4).astype(np.float32)
    y = (rng.normal(size=(3000, 3)) - 7e3).astype(np.float32)
    mixed = JointMoments.from_arrays(x, y, precision="mixed")
    exact = JointMoments.from_arrays(x, y)
    assert mixed.precision == "mixed" and exact.precision == "float64"
    np.testing.assert_allclose(mixed.s, exact.s, rtol=2e-6, atol=1e-3)
    np.testing.assert_allclose(mixed.mean, exact.mean, rtol=1e-12)


# ------------------------------------------------------------ memory bound
def test_npy_reader_streams_in_bounded_chunks(rng, tmp_path):
    x = rng.normal(size=(1000, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    sizes = []
    for (chunk,) in streaming.iter_chunks([tmp_path / "x.npy"], chunk_size=128):
        sizes.append(chunk.shape[0])
        assert chunk.base is not None or chunk.nbytes <= 128 * 8 * 4
    assert sum(sizes) == 1000 and max(sizes) == 128
    rows = streaming.default_chunk_rows([1024, 1024])
    assert rows * 2048 * 4 <= streaming.CHUNK_BYTES and rows % 4096 == 0
    assert streaming.default_chunk_rows([10**6]) >= 256


def test_prefetched_npy_chunks_hold_their_own_rows(rng, tmp_path):
    """Reading ahead into alternating buffers never hands out rows of another chunk."""
    x = rng.normal(size=(1000, 8)).astype(np.float32)
    y = rng.normal(size=(1000, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    start = 0
    buffers = set()
    for cx, cy in streaming.iter_chunks([tmp_path / "x.npy", tmp_path / "y.npy"],
                                        chunk_size=96):
        stop = start + cx.shape[0]
        np.testing.assert_array_equal(cx, x[start:stop])
        np.testing.assert_array_equal(cy, y[start:stop])
        buffers.add(cx.__array_interface__["data"][0])
        start = stop
    assert start == 1000
    assert len(buffers) == 2  # two buffers alternate
    mixed = streaming.moments(tmp_path / "x.npy", tmp_path / "y.npy", chunk_size=96,
                              measures="cka")
    assert mixed.precision == "mixed"
    ref = SecondMoments.from_arrays(x.astype(np.float64), y.astype(np.float64))
    np.testing.assert_allclose(mixed.sxy, ref.sxy, rtol=1e-6, atol=1e-4)


def test_statistics_memory_is_quadratic_in_width_only(rng):
    jm = streaming.joint_moments([rng.normal(size=(5000, 6)), rng.normal(size=(5000, 4))],
                                 chunk_size=100)
    assert jm.s.shape == (10, 10) and jm.mean.shape == (10,)


# ---------------------------------------------------------------- errors
def test_errors(rng, tmp_path):
    x, y = _pair(rng, n=50)
    with pytest.raises(InputShapeError, match="same number of rows"):
        streaming.moments(x, y[:40])
    with pytest.raises(InvalidParameterError):
        streaming.moments(x, y, precision="half")
    with pytest.raises(InvalidParameterError, match="second moments"):
        streaming.compute("rsa", x, y)
    with pytest.raises(InvalidParameterError, match="second moments"):
        streaming.compute(repscope.measure("cka", kernel="rbf"), x, y)
    bad = x.copy()
    bad[17, 2] = np.nan
    with pytest.raises(InputValueError, match="NaN"):
        streaming.moments(bad, y, chunk_size=10)
    with pytest.raises(InputShapeError, match="empty"):
        streaming.joint_moments(iter([]))
    jm = JointMoments.empty([3, 2])
    with pytest.raises(InputShapeError):
        jm.update(np.ones((4, 3)), np.ones((5, 2)))
    with pytest.raises(InputShapeError):
        jm.update(np.ones((4, 3)), np.ones((4, 3)))
    with pytest.raises(InputShapeError):
        jm.merge(JointMoments.empty([3, 3]))
    with pytest.raises(InputValueError, match=".npy"):
        streaming.moments(str(tmp_path / "x.csv"), y)
    np.save(tmp_path / "v.npy", np.ones(5))
    with pytest.raises(InputShapeError, match="2-D"):
        streaming.moments(tmp_path / "v.npy", y)
    with pytest.raises(InputValueError):
        SecondMoments(1, x[0], y[0], x[:1].T @ x[:1], y[:1].T @ y[:1], x[:1].T @ y[:1], "fp8")
