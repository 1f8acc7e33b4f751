"""``repscope ground study.toml``: the tests that apply to a study's own models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repscope.grounding import TESTS


def _study(folder: Path) -> Path:
    models = []
    for name, widths, seed in (("a0", [16, 16, 16], 0), ("a1", [16, 16, 16], 1),
                               ("b0", [8, 8, 8], 0), ("b1", [8, 8, 8], 1)):
        models.append(f"""
[[models]]
name = "{name}"
factory = "repscope.zoo.digits:pretrained"
kwargs = {{ widths = {widths}, seed = {seed}, epochs = 5 }}
layers = ["layer1", "layer2", "layer3", "logits"]
""")
    models.append("""
[[models]]
name = "short"
factory = "repscope.zoo.digits:pretrained"
kwargs = { widths = [16], seed = 0, epochs = 5 }
layers = ["layer1", "logits"]
""")
    path = folder / "study.toml"
    path.write_text('[study]\nname = "tiny"\n[dataset]\nkind = "digits"\nsplit = "test"\n'
                    "n = 150\n" + "".join(models)
                    + '[compare]\nmeasures = ["cka"]\n', encoding="utf-8")
    return path


def test_ground_on_a_study_runs_what_applies_and_says_what_it_skipped(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from typer.testing import CliRunner

    from repscope.cli.main import app

    study = _study(tmp_path)
    groups = tmp_path / "groups.json"
    groups.write_text(json.dumps({"augmentation": {"a0": "w16", "a1": "w16", "b0": "w8",
                                                   "b1": "w8"}}))
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["ground", str(study), "-m", "cka", "-m", "procrustes",
                                   "--n-boot", "10", "--out", str(out), "--groups",
                                   str(groups)])
    assert res.exit_code == 0, res.output
    data = json.loads((out / "grounding.json").read_text())
    ran = set(data["tests"])
    assert {"layer_identification", "monotonicity", "sensitivity", "specificity",
            "accuracy_correlation", "output_correlation", "augmentation"} <= ran
    assert set(data["skipped"]) == {"label_randomisation", "shortcut"}
    assert "grouped by label randomisation" in data["skipped"]["label_randomisation"]
    assert ran | set(data["skipped"]) == set(TESTS)
    assert "short" in data["settings"]["left_out"] and "left out short" in res.output
    assert "label_randomisation" in res.output and "skipped" in res.output
    # two widths, grouped by width: the grouping is plain to CKA
    aug = next(r for r in data["rows"] if r["test"] == "augmentation" and r["measure"] == "cka")
    assert aug["score"] > 0.5


def test_ground_study_bad_groups_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from typer.testing import CliRunner

    from repscope.cli.main import app

    study = _study(tmp_path)
    groups = tmp_path / "groups.json"
    groups.write_text(json.dumps({"augmentation": {"nobody": "x", "a0": "y"}}))
    res = CliRunner().invoke(app, ["ground", str(study), "-m", "cka", "--out",
                                   str(tmp_path / "o"), "--groups", str(groups)])
    assert res.exit_code != 0
    assert "'nobody' is not a model" in str(res.exception)
