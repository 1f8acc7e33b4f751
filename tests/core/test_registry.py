from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import repscope
from repscope.cli.main import app
from repscope.core.arrays import namespace
from repscope.measures.metadata import Invariance, MeasureInfo


def test_lookup_and_params() -> None:
    m = repscope.measure("cka", kernel="rbf", sigma=0.5)
    assert m.params["kernel"] == "rbf" and m.params["sigma"] == 0.5
    with pytest.raises(repscope.InvalidParameterError, match="unknown parameter"):
        repscope.measure("cka", kernal="rbf")
    with pytest.raises(repscope.InvalidParameterError, match="kernel must be one of"):
        repscope.measure("cka", kernel="poly")
    with pytest.raises(repscope.InvalidParameterError, match="sigma"):
        repscope.measure("cka", sigma=-1.0)


def test_unknown_measure_suggests() -> None:
    with pytest.raises(repscope.UnknownMeasureError, match="did you mean cka"):
        repscope.measure("ckaa")
    with pytest.raises(KeyError):
        repscope.measure("no_such_measure")


def test_metadata_is_complete() -> None:
    infos = repscope.list_measures()
    assert len({i.name for i in infos}) == len(infos)
    for info in infos:
        assert info.reference and info.assumptions
        d = info.as_dict()
        json.dumps(d)
        assert set(d) >= {"name", "family", "kind", "range", "symmetric", "metric", "invariances"}


def test_metadata_rejects_inconsistent_invariances() -> None:
    with pytest.raises(ValueError, match="implies"):
        MeasureInfo(
            name="bad", family="custom", kind="similarity", value_range=(0, 1),
            symmetric=True, metric=False, invariances=frozenset({Invariance.ORTHOGONAL}),
            assumptions="-", reference="-",
        )
    with pytest.raises(ValueError, match="metric must be symmetric"):
        MeasureInfo(
            name="bad", family="custom", kind="distance", value_range=(0, 1),
            symmetric=False, metric=True, invariances=frozenset(), assumptions="-", reference="-",
        )


def _custom(name: str, invariances: frozenset) -> type[repscope.Measure]:
    class MeanSquaredCorrelation(repscope.Measure):
        """Largest squared Pearson correlation between any pair of units (a toy measure)."""

        info = MeasureInfo(
            name=name, family="custom", kind="similarity", value_range=(0.0, 1.0),
            symmetric=True, metric=False, invariances=invariances,
            assumptions="toy", reference="test", min_samples=3,
        )

        def _compare(self, px, py):
            xp = namespace(px.data)
            x = px.data - xp.mean(px.data, axis=0)
            y = py.data - xp.mean(py.data, axis=0)
            x = x / xp.linalg.vector_norm(x, axis=0)
            y = y / xp.linalg.vector_norm(y, axis=0)
            c = x.T @ y
            return xp.max(c * c)

    return MeanSquaredCorrelation


def test_custom_measure_registers_and_passes() -> None:
    true_inv = frozenset({Invariance.PERMUTATION, Invariance.TRANSLATION,
                          Invariance.ISOTROPIC_SCALING})
    cls = repscope.register(_custom("toy_corr", true_inv))
    try:
        assert repscope.measure("toy_corr")(np.eye(4), np.eye(4)[::-1]) >= 0
        report = repscope.testing.check_measure("toy_corr")
        assert report.ok and report.results["invariances"] == "ok"
        with pytest.raises(repscope.RepscopeError, match="already registered"):
            repscope.register(_custom("toy_corr", true_inv))
        assert repscope.register(cls) is cls  # re-registering the same class is fine
    finally:
        repscope.unregister("toy_corr")


def test_check_measure_catches_false_invariance_claim() -> None:
    # claims rotation invariance, which per-unit correlations do not have
    wrong = frozenset({Invariance.PERMUTATION, Invariance.ORTHOGONAL, Invariance.TRANSLATION,
                       Invariance.ISOTROPIC_SCALING})
    m = _custom("toy_wrong", wrong)()
    report = repscope.testing.check_measure(m, checks=["invariances"], raise_on_failure=False)
    assert "orthogonal" in report.failures["invariances"]
    with pytest.raises(AssertionError, match="orthogonal"):
        repscope.testing.check_measure(m, checks=["invariances"])


def test_check_measure_catches_missing_invariance_claim() -> None:
    # omits the true translation invariance: the two-way test must notice
    m = _custom("toy_missing", frozenset({Invariance.PERMUTATION,
                                          Invariance.ISOTROPIC_SCALING}))()
    report = repscope.testing.check_measure(m, checks=["non_invariances"], raise_on_failure=False)
    assert "translation" in report.failures["non_invariances"]


def test_check_measure_catches_wrong_range_and_identity() -> None:
    cls = _custom("toy_range", frozenset())
    bad = type("Bad", (cls,), {"info": MeasureInfo(
        name="toy_range", family="custom", kind="similarity", value_range=(0.0, 0.01),
        symmetric=True, metric=False, invariances=frozenset(), assumptions="-", reference="-")})
    report = repscope.testing.check_measure(bad(), checks=["range", "identity"],
                                            raise_on_failure=False)
    assert set(report.failures) == {"range", "identity"}


def test_cli_measures_table_and_json() -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["measures", "--json"])
    assert res.exit_code == 0
    data = json.loads(res.output)
    names = {d["name"] for d in data}
    assert {"cka", "mean_cca", "procrustes"} <= names
    cka = next(d for d in data if d["name"] == "cka")
    assert "orthogonal" in cka["invariances"] and "invertible_linear" not in cka["invariances"]
    res = runner.invoke(app, ["measures"])
    assert res.exit_code == 0 and "mean_cca" in res.output
    res = runner.invoke(app, ["measures", "--family", "cca", "--json"])
    assert all(d["family"] == "cca" for d in json.loads(res.output))
