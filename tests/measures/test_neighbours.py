"""Neighbourhood measures: hand-worked examples, sklearn neighbour lists, brute-force formulas."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.neighbors import NearestNeighbors

import repscope
from repscope.core.errors import (
    DegenerateInputError,
    InsufficientSamplesError,
    InvalidParameterError,
)
from repscope.measures import _knn
from repscope.measures._knn import knn, neighbour_ranks, position_in, sq_distance_blocks
from repscope.measures.metadata import Invariance

# Five samples on a line.  X-distances are all distinct, as are Y-distances.
#   X = 0, 1, 3, 7, 15     2-NN lists (nearest first):
#     s0 [1, 2]  s1 [0, 2]  s2 [1, 0]  s3 [2, 1]  s4 [3, 2]
#   Y = 0, 1.5, 1, 12, 5   2-NN lists:
#     s0 [2, 1]  s1 [2, 0]  s2 [1, 0]  s3 [4, 1]  s4 [1, 2]
X_LINE = np.array([[0.0], [1.0], [3.0], [7.0], [15.0]])
Y_LINE = np.array([[0.0], [1.5], [1.0], [12.0], [5.0]])
X_2NN = [[1, 2], [0, 2], [1, 0], [2, 1], [3, 2]]
Y_2NN = [[2, 1], [2, 0], [1, 0], [4, 1], [1, 2]]


def _sk_neighbours(x: np.ndarray, k: int, metric: str = "euclidean") -> np.ndarray:
    nn = NearestNeighbors(n_neighbors=k + 1, metric=metric, algorithm="brute").fit(x)
    dist, idx = nn.kneighbors(x)
    assert np.all(idx[:, 0] == np.arange(len(x)))  # self first (no duplicates)
    return idx[:, 1:], dist[:, 1:]


# ------------------------------------------------------------ neighbour lists
def test_hand_built_neighbour_lists() -> None:
    assert knn(X_LINE, 2).indices.tolist() == X_2NN
    assert knn(Y_LINE, 2).indices.tolist() == Y_2NN
    np.testing.assert_allclose(knn(X_LINE, 2).distances[4], [8.0, 12.0])


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("k", [1, 4, 19])
def test_neighbour_lists_match_sklearn(rng: np.random.Generator, metric: str, k: int) -> None:
    x = rng.normal(size=(20, 5)) + 0.5
    ours = knn(x, k, metric)
    idx, dist = _sk_neighbours(x, k, metric)
    np.testing.assert_array_equal(ours.indices, idx)
    np.testing.assert_allclose(ours.distances, dist, rtol=1e-10, atol=1e-12)


def test_blocked_distances_match_single_block(rng: np.random.Generator, monkeypatch) -> None:
    x = rng.normal(size=(37, 4))
    full = knn(x, 5)
    monkeypatch.setattr(_knn, "_BLOCK_BUDGET", 50)  # blocks of one row
    blocked = knn(x, 5)
    np.testing.assert_array_equal(full.indices, blocked.indices)
    starts = [s for s, _, _ in sq_distance_blocks(x)]
    assert starts == list(range(37))
    for s, e, d in sq_distance_blocks(x, block=10):
        ref = ((x[s:e, None, :] - x[None, :, :]) ** 2).sum(-1)
        ref[np.arange(e - s), np.arange(s, e)] = np.inf
        np.testing.assert_allclose(d, ref, rtol=1e-9, atol=1e-9)


def test_ties_are_broken_by_index() -> None:
    grid = np.arange(5.0)[:, None]  # 2 has neighbours 1 and 3 at distance 1, 0 and 4 at 2
    nb = knn(grid, 3)
    assert nb.indices[2].tolist() == [1, 3, 0]
    assert nb.indices[0].tolist() == [1, 2, 3]
    assert knn(grid, 1).indices[:, 0].tolist() == [1, 0, 1, 2, 3]
    dup = np.array([[0.0], [0.0], [0.0], [5.0]])  # three coincident points
    assert knn(dup, 2).indices.tolist() == [[1, 2], [0, 2], [0, 1], [0, 1]]


def test_neighbour_ranks_match_brute_force(rng: np.random.Generator) -> None:
    x = rng.normal(size=(15, 3))
    me = np.arange(15)[:, None]
    targets = rng.integers(0, 15, size=(15, 4))
    targets = np.where(targets == me, (me + 1) % 15, targets)  # never the point itself
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    order = np.argsort(d, axis=1, kind="stable")  # ties by index
    rank_of = np.empty_like(order)
    np.put_along_axis(rank_of, order, np.tile(np.arange(1, 16), (15, 1)), axis=1)
    expected = np.take_along_axis(rank_of, targets, axis=1)
    np.testing.assert_array_equal(neighbour_ranks(x, targets), expected)


def test_neighbour_ranks_break_ties_by_index() -> None:
    grid = np.arange(5.0)[:, None]  # from 2: order 1, 3, 0, 4
    ranks = neighbour_ranks(grid, np.array([[3, 4], [3, 0], [3, 4], [0, 1], [0, 3]]))
    assert ranks[2].tolist() == [2, 4]
    assert ranks[1].tolist() == [3, 1]  # from 1: order 0, 2, 3, 4


def test_position_in() -> None:
    lists = np.array([[3, 1], [0, 2], [1, 0], [2, 0]])
    rows = np.array([0, 0, 1, 3, 2])
    values = np.array([1, 2, 2, 0, 3])
    assert position_in(lists, rows, values).tolist() == [1, -1, 1, 1, -1]


# ----------------------------------------------------------- hand-worked values
def test_mutual_knn_and_jaccard_hand_worked() -> None:
    # shared 2-NN per sample: s0 {1,2}, s1 {0,2}, s2 {0,1}, s3 {1}, s4 {2} -> 2, 2, 2, 1, 1
    assert repscope.measure("mutual_knn", k=2)(X_LINE, Y_LINE) == pytest.approx(
        (1 + 1 + 1 + 0.5 + 0.5) / 5
    )
    # Jaccard s / (2k - s): 1, 1, 1, 1/3, 1/3
    assert repscope.measure("knn_jaccard", k=2)(X_LINE, Y_LINE) == pytest.approx(
        (3 + 2 / 3) / 5
    )


def test_rank_similarity_hand_worked() -> None:
    # s0: joint 1 (ranks 1 vs 2), 2 (2 vs 1): (1/3 + 1/3) / H2 = 4/9; s1 likewise 4/9;
    # s2: joint 1 (1,1), 0 (2,2): (1 + 1/2) / H2 = 1; s3: joint 1 (2,2): 1/2 / H1; s4: 1/2.
    expected = (4 / 9 + 4 / 9 + 1 + 0.5 + 0.5) / 5
    assert repscope.measure("rank_similarity", k=2)(X_LINE, Y_LINE) == pytest.approx(expected)


def test_cycle_knn_hand_worked() -> None:
    # k=1: NN_X = [1,0,1,2,3], NN_Y = [2,2,1,4,1]; NN_X(NN_Y(i)) == i for i = 1, 3
    assert repscope.measure("cycle_knn", k=1)(X_LINE, Y_LINE) == pytest.approx(2 / 5)
    # k=2: only s4 fails (its Y-neighbours 1, 2 do not have 4 among their X-neighbours)
    assert repscope.measure("cycle_knn", k=2)(X_LINE, Y_LINE) == pytest.approx(4 / 5)


def test_cycle_knn_is_asymmetric_and_identity_not_fixed(rng: np.random.Generator) -> None:
    m = repscope.measure("cycle_knn", k=3)
    pairs = [(rng.normal(size=(40, 4)), rng.normal(size=(40, 4))) for _ in range(5)]
    assert any(m(x, y) != m(y, x) for x, y in pairs)
    # mutual-NN pairs only: 0<->1 are mutual, 2's NN is 1 (not mutual) -> 2/3
    assert repscope.measure("cycle_knn", k=1)(np.array([[0.0], [1.0], [3.0]]), np.array(
        [[0.0], [1.0], [3.0]]
    )) == pytest.approx(2 / 3)


# --------------------------------------------------------- brute-force formulas
def _brute_sets(x: np.ndarray, k: int, metric: str = "euclidean") -> list[list[int]]:
    return [list(r) for r in _sk_neighbours(x, k, metric)[0]]


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_second_order_cosine_brute_force(rng: np.random.Generator, metric: str) -> None:
    x = rng.normal(size=(25, 4)) + 1.0
    y = x @ rng.normal(size=(4, 6)) + rng.normal(size=(25, 6))
    k = 4
    nx, ny = _brute_sets(x, k, metric), _brute_sets(y, k, metric)

    def cos(a: np.ndarray, b: np.ndarray) -> float:
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    vals = []
    for i in range(25):
        union = sorted(set(nx[i]) | set(ny[i]))
        sx = np.array([cos(x[i], x[j]) for j in union])
        sy = np.array([cos(y[i], y[j]) for j in union])
        vals.append(cos(sx, sy))
    got = repscope.measure("second_order_cosine", k=k, metric=metric)(x, y)
    assert got == pytest.approx(np.mean(vals), rel=1e-12)


def test_cknna_brute_force(rng: np.random.Generator) -> None:
    x = rng.normal(size=(30, 5))
    y = np.tanh(x @ rng.normal(size=(5, 4))) + 0.3 * rng.normal(size=(30, 4))
    k = 6
    xc, yc = x - x.mean(0), y - y.mean(0)
    kk, ll = xc @ xc.T, yc @ yc.T
    mx = np.zeros((30, 30), bool)
    my = np.zeros((30, 30), bool)
    for i, (a, b) in enumerate(zip(_brute_sets(x, k), _brute_sets(y, k))):
        mx[i, a] = True
        my[i, b] = True
    expected = np.sum((mx & my) * kk * ll) / np.sqrt(np.sum(mx * kk**2) * np.sum(my * ll**2))
    assert repscope.measure("cknna", k=k)(x, y) == pytest.approx(expected, rel=1e-12)


def test_cknna_full_neighbourhood_is_cka_without_diagonal(rng: np.random.Generator) -> None:
    x, y = rng.normal(size=(12, 3)), rng.normal(size=(12, 4))
    xc, yc = x - x.mean(0), y - y.mean(0)
    kk, ll = xc @ xc.T, yc @ yc.T
    np.fill_diagonal(kk, 0.0)
    np.fill_diagonal(ll, 0.0)
    expected = np.sum(kk * ll) / (np.linalg.norm(kk) * np.linalg.norm(ll))
    assert repscope.measure("cknna", k=11)(x, y) == pytest.approx(expected, rel=1e-12)


def test_knn_measures_agree_with_brute_force_sets(rng: np.random.Generator) -> None:
    x, y = rng.normal(size=(30, 3)), rng.normal(size=(30, 5))
    k = 5
    nx, ny = _brute_sets(x, k), _brute_sets(y, k)
    inter = np.array([len(set(a) & set(b)) for a, b in zip(nx, ny)])
    assert repscope.measure("mutual_knn", k=k)(x, y) == pytest.approx(np.mean(inter / k))
    assert repscope.measure("knn_jaccard", k=k)(x, y) == pytest.approx(
        np.mean(inter / (2 * k - inter))
    )
    cyc = np.mean([any(i in nx[j] for j in ny[i]) for i in range(30)])
    assert repscope.measure("cycle_knn", k=k)(x, y) == pytest.approx(cyc)


# ------------------------------------------------------------------ properties
NAMES = ["knn_jaccard", "mutual_knn", "rank_similarity", "second_order_cosine", "cknna"]


@pytest.mark.parametrize("name", NAMES)
def test_identity_and_unrelated(rng: np.random.Generator, name: str) -> None:
    x = rng.normal(size=(60, 5))
    m = repscope.measure(name)
    assert m(x, x) == pytest.approx(1.0)
    assert m(x, rng.normal(size=(60, 5))) < 0.6


ALL_KNN = [*NAMES, "cycle_knn", "information_imbalance"]


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(ALL_KNN), st.integers(1, 6))
def test_relabelling_samples_jointly_changes_nothing(seed: int, name: str, k: int) -> None:
    """Sample order is arbitrary: permuting the rows of X and Y together keeps the value."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(25, 3))
    y = x @ rng.normal(size=(3, 4)) + rng.normal(size=(25, 4))
    perm = rng.permutation(25)
    m = repscope.measure(name, k=k)
    assert m(x[perm], y[perm]) == pytest.approx(m(x, y), rel=1e-12, abs=1e-12)


def test_prepared_neighbours_are_shared() -> None:
    a, b = repscope.measure("knn_jaccard", k=3), repscope.measure("rank_similarity", k=3)
    assert a.prepare_key() == b.prepare_key() != repscope.measure("knn_jaccard").prepare_key()
    p = a.prepare(X_LINE)
    assert ("knn", 3, "euclidean") in p.cache
    q = a.prepare(Y_LINE)
    assert float(b.compare_prepared(p, q)) == b(X_LINE, Y_LINE)


def test_cosine_metric_drops_translation_invariance() -> None:
    assert Invariance.TRANSLATION in repscope.measure("mutual_knn").invariances
    assert Invariance.TRANSLATION not in repscope.measure("mutual_knn", metric="cosine").invariances
    assert Invariance.TRANSLATION not in repscope.measure("second_order_cosine").invariances


def test_torch_input(rng: np.random.Generator) -> None:
    torch = pytest.importorskip("torch")
    x, y = rng.normal(size=(20, 3)), rng.normal(size=(20, 4))
    m = repscope.measure("cknna", k=4)
    assert m(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(m(x, y))


# ---------------------------------------------------------------------- errors
def test_errors(rng: np.random.Generator) -> None:
    x = rng.normal(size=(8, 3))
    with pytest.raises(InsufficientSamplesError, match="k \\+ 1 = 11"):
        repscope.measure("mutual_knn")(x, x)
    with pytest.raises(InvalidParameterError, match="k must be"):
        repscope.measure("mutual_knn", k=0)
    with pytest.raises(InvalidParameterError, match="k must be"):
        repscope.measure("mutual_knn", k=2.5)
    with pytest.raises(InvalidParameterError, match="metric must be"):
        repscope.measure("knn_jaccard", metric="manhattan")
    z = x.copy()
    z[3] = 0.0
    with pytest.raises(DegenerateInputError, match="all-zero rows"):
        repscope.measure("knn_jaccard", k=2, metric="cosine")(z, x)
    with pytest.raises(DegenerateInputError, match="all-zero rows"):
        repscope.measure("second_order_cosine", k=2)(x, z)
    with pytest.raises(DegenerateInputError, match="constant"):
        repscope.measure("cknna", k=2)(np.ones((8, 3)), x)
