from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from repscope.study.spec import StudySpecError, load_study

GOOD = """
[study]
name = "s"
[dataset]
kind = "digits"
n = 100
[[models]]
name = "a"
factory = "repscope.zoo.digits:pretrained"
kwargs = { widths = [8, 8], seed = 0 }
layers = ["layer1", "layer2"]
[[models]]
name = "saved"
activations = { l1 = "l1.npy" }
[compare]
measures = ["cka", { name = "cka", kernel = "rbf" }]
[stats]
permutations = 10
"""


def _write(tmp_path: Path, text: str) -> Path:
    np.save(tmp_path / "l1.npy", np.zeros((3, 2)))
    p = tmp_path / "study.toml"
    p.write_text(text)
    return p


def test_good_spec(tmp_path: Path) -> None:
    spec = load_study(_write(tmp_path, GOOD))
    assert spec.name == "s" and len(spec.models) == 2
    assert spec.models[0].kind == "torch" and spec.models[0].layers == ("layer1", "layer2")
    assert spec.models[1].activations["l1"] == (tmp_path / "l1.npy").resolve()
    assert spec.permutations == 10 and spec.bootstrap == 0
    assert spec.measures[1] == {"name": "cka", "kernel": "rbf"}


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        ('kind = "digits"', 'kind = "imagenet"', "kind must be one of"),
        ('name = "saved"', 'name = "a"', "unique"),
        ('measures = ["cka"', 'measures = ["ckaa"', "did you mean cka"),
        ('kernel = "rbf"', 'kernel = "poly"', "kernel must be one of"),
        ('l1 = "l1.npy"', 'l1 = "missing.npy"', "file not found"),
        ('layers = ["layer1", "layer2"]', "", "list the module names"),
        ("permutations = 10", "permutation = 10", "unknown key"),
        ('factory = "repscope.zoo.digits:pretrained"', 'hf = "x"\nfactory = "a:b"', "exactly one"),
    ],
)
def test_bad_specs(tmp_path: Path, old: str, new: str, match: str) -> None:
    assert old in GOOD
    with pytest.raises(StudySpecError, match=match):
        load_study(_write(tmp_path, GOOD.replace(old, new, 1)))


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(StudySpecError, match="not found"):
        load_study(tmp_path / "nope.toml")
    p = tmp_path / "bad.toml"
    p.write_text("[study\nname=")
    with pytest.raises(StudySpecError, match="invalid TOML"):
        load_study(p)


def test_multiple_testing_and_fitted_options(tmp_path: Path) -> None:
    spec = load_study(_write(tmp_path, GOOD))
    assert (spec.fitted, spec.adjust, spec.q, spec.max_permutations) == (
        "heldout", "bh", 0.05, 10_000)
    text = GOOD.replace("permutations = 10", "permutations = 10\nadjust = \"holm\"\nq = 0.1\n"
                        "max_permutations = 500").replace(
        '[compare]', '[compare]\nfitted = "in_sample"')
    spec = load_study(_write(tmp_path, text))
    assert (spec.fitted, spec.adjust, spec.q, spec.max_permutations) == (
        "in_sample", "holm", 0.1, 500)
    for bad in ('adjust = "bonferroni"', "q = 2", "max_permutations = 0"):
        with pytest.raises(StudySpecError):
            load_study(_write(tmp_path, GOOD.replace("permutations = 10",
                                                     f"permutations = 10\n{bad}")))
    with pytest.raises(StudySpecError, match="fitted"):
        load_study(_write(tmp_path, GOOD.replace("[compare]", '[compare]\nfitted = "both"')))
