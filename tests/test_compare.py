"""Tests of repscope.compare: one pair, many measures, result table."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import pytest

import repscope
from repscope import inference
from repscope.core.errors import InputShapeError, InvalidParameterError
from repscope.engine.compare import DEFAULT_MEASURES, compare
from repscope.engine.table import ADJUST_COLUMNS, RESULT_COLUMNS, ResultTable
from repscope.measures.base import Measure, Prepared
from repscope.measures.metadata import MeasureInfo


def related(rng: np.random.Generator, n: int = 60, dx: int = 6, dy: int = 5, noise: float = 0.5):
    z = rng.normal(size=(n, 3))
    x = z @ rng.normal(size=(3, dx)) + noise * rng.normal(size=(n, dx))
    y = z @ rng.normal(size=(3, dy)) + noise * rng.normal(size=(n, dy))
    return x, y


def test_values_equal_direct_calls(rng):
    x, y = related(rng)
    specs = ["cka", ("cka", {"kernel": "rbf"}), "procrustes", "mean_cca"]
    res = compare(x, y, specs)
    assert len(res) == 4
    for row, spec in zip(res, specs):
        m = inference.resolve_measure(spec)
        assert row["measure"] == m.info.name
        assert row["params"] == m.params
        assert row["value"] == pytest.approx(m(x, y), rel=1e-12)
        assert row["kind"] == m.info.kind
        assert (row["n"], row["dx"], row["dy"]) == (60, 6, 5)
        assert row["error"] is None and row["pvalue"] is None
        assert row["seconds"] >= 0


def test_default_and_all_measures(rng):
    x, y = related(rng)
    registered = {i.name for i in repscope.list_measures()}
    res = compare(x, y)
    assert res.column("measure") == [m for m in DEFAULT_MEASURES if m in registered]
    everything = compare(x, y, "all")
    names = set(everything.column("measure"))
    assert {"cka", "procrustes", "mean_cca"} <= names
    for name in names:  # only representation measures without per-sample parameters
        assert repscope.measure_info(name).input_kind == "representation"
    assert "disagreement" not in names


def test_mapping_and_single_specs(rng):
    x, y = related(rng)
    res = compare(x, y, {"cka": {"kernel": "rbf"}, "procrustes": {}})
    assert res.column("measure") == ["cka", "procrustes"]
    assert res[0]["params"]["kernel"] == "rbf"
    assert len(compare(x, y, "cka")) == 1
    assert len(compare(x, y, repscope.measure("nbs"))) == 1


def test_statistics_columns_match_the_stats_functions(rng):
    x, y = related(rng, 50, 5, 4, noise=1.5)
    st = inference.Stats(n_permutations=30, n_boot=20, heldout=True, level=0.9)
    res = compare(x, y, ["cka", "mean_cca"], stats=st, seed=3)
    # a table of 2 tests at q = 0.05 needs m = ⌊2/0.05⌋ = 40 > 30 permutations (auto rule)
    pt = inference.permutation_test("cka", x, y, 40, seed=3)
    with pytest.warns(repscope.RepscopeWarning, match="biased at n=50"):
        bs = inference.bootstrap_ci("cka", x, y, 20, seed=3, level=0.9)
    row = res["cka"]
    assert row["pvalue"] == pt.pvalue and row["p_floor"] == pt.p_floor == 1 / 41
    assert row["calibrated"] == pytest.approx(pt.calibrated)
    assert row["zscore"] == pytest.approx(pt.zscore)
    assert row["null_mean"] == pytest.approx(pt.null_mean)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(tuple(bs.confidence_interval))
    assert row["estimate"] == pytest.approx(bs.estimate) and row["value"] == bs.statistic
    assert any("biased at n=50" in w for w in row["warnings"])
    assert row["heldout"] is None  # cka has no held-out form
    assert row["stats_seconds"] > 0
    ho = inference.heldout("mean_cca", x, y, seed=3)
    assert res["mean_cca"]["heldout"] == pytest.approx(ho.statistic)


def test_degeneracy_warnings_land_in_the_table_not_lost(rng):
    x, y = rng.normal(size=(10, 12)), rng.normal(size=(10, 12))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = compare(x, y, ["mean_cca", "procrustes"])
    assert not [w for w in caught if issubclass(w.category, repscope.RepscopeWarning)]
    msgs = res["mean_cca"]["warnings"]
    assert any(w.startswith("DegeneracyWarning") and "d=12" in w for w in msgs)
    # procrustes raises no degeneracy warning, but its chance level at n = 10, d = 12 is noted
    (note,) = res["procrustes"]["warnings"]
    assert note.startswith("ChanceWarning: procrustes of unrelated data at n = 10, d = 12")
    text = str(res)
    assert "[1]" in text and "DegeneracyWarning" in text


def test_failing_measure_is_recorded_and_others_computed(rng):
    x, y = related(rng, 40, 6, 5)
    res = compare(x, y, ["permutation_procrustes", "cka"])
    bad = res["permutation_procrustes"]
    assert bad["value"] is None
    assert "InputShapeError" in bad["error"] and "equal width" in bad["error"]
    assert res["cka"]["value"] == pytest.approx(repscope.measure("cka")(x, y))
    assert "error (permutation_procrustes)" in str(res)
    with pytest.raises(InputShapeError):
        compare(x, y, ["permutation_procrustes", "cka"], on_error="raise")


def test_bad_inputs_raise_immediately(rng):
    x, y = related(rng)
    with pytest.raises(InputShapeError):
        compare(x, y[:-2], ["cka"])
    with pytest.raises(InputShapeError):
        compare(x[:, 0], y, ["cka"])
    with pytest.raises(InvalidParameterError):
        compare(x, y, ["cka"], on_error="ignore")
    with pytest.raises(InvalidParameterError):
        compare(x, y, [])
    with pytest.raises(InvalidParameterError):
        compare(x, y, 3.5)
    with pytest.raises(repscope.UnknownMeasureError):
        compare(x, y, ["ckaa"])
    with pytest.raises(InvalidParameterError):
        compare(x, y, ["cka"], stats="jackknife")


class _Counting(Measure):
    """Records how often a representation is prepared; shares one prepare key."""

    calls: ClassVar[list[int]] = []
    info: ClassVar[MeasureInfo] = MeasureInfo(
        name="_counting", family="custom", kind="similarity", value_range=(-1.0, 1.0),
        symmetric=True, metric=False, invariances=frozenset(), assumptions="test",
        reference="test", backend="numpy", min_samples=2, params={"flip": False},
    )

    def prepare_key(self) -> tuple[Any, ...]:
        return ("counting",)

    def _prepare(self, p: Prepared) -> None:
        _Counting.calls.append(p.n)
        p.cache["first"] = p.data[:, 0]

    def _compare(self, px: Prepared, py: Prepared) -> Any:
        r = float(np.corrcoef(px.cache["first"], py.cache["first"])[0, 1])
        return -r if self.params["flip"] else r


def test_each_representation_prepared_once_per_prepare_key(rng):
    x, y = related(rng)
    _Counting.calls.clear()
    res = compare(x, y, [_Counting(), _Counting(flip=True)], chance=False)
    assert len(_Counting.calls) == 2  # X and Y once, shared by both measures
    assert res[0]["value"] == pytest.approx(-res[1]["value"])


def test_torch_inputs(rng):
    torch = pytest.importorskip("torch")
    x, y = related(rng)
    res = compare(torch.from_numpy(x), torch.from_numpy(y), ["cka", "mutual_knn"])
    ref = compare(x, y, ["cka", "mutual_knn"])
    assert res.column("value") == pytest.approx(ref.column("value"), rel=1e-10)


def test_result_table_api(rng):
    x, y = related(rng)
    res = compare(x, y, ["cka", "procrustes"], stats={"n_permutations": 10})
    df = res.to_pandas()
    columns = [*RESULT_COLUMNS, *ADJUST_COLUMNS]  # p-values adjusted over the table
    assert list(df.columns) == columns
    assert df.shape == (2, len(columns))
    assert df["value"].tolist() == pytest.approx(res.column("value"))
    recs = res.to_records()
    assert recs[1]["measure"] == "procrustes" and set(recs[1]) == set(columns)
    recs[0]["value"] = -1.0
    assert res[0]["value"] != -1.0  # records are copies
    assert res.value("procrustes") == res[1]["value"]
    with pytest.raises(KeyError):
        res["nope"]
    text = str(res)
    assert text.splitlines()[0].split()[:4] == ["measure", "kind", "value", "pvalue"]
    assert "procrustes" in text and "distance" in text
    assert repr(res).startswith("<ResultTable: 2 rows>")
    assert str(ResultTable([])) == "ResultTable: no rows"
