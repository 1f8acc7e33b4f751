"""Study files have a typed schema: wrong types, sizes and names are one-line errors (exit 2).

Each case of issue 14's "Why" on study files is here: ``[dataset] n = -3``, typos in
``[stats] measures`` and ``[report] primary_measure``, ``batch_size = "big"``,
``kwargs = [1, 2]``, ``n = "abc"``, ``permutations = "lots"``, ``profile = "no"``
(and for probes, stitching) and ``measures = "cka"``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from repscope.cli.main import main
from repscope.study.datasets import load_study_data
from repscope.study.demo import digits_spec, sentences_spec
from repscope.study.spec import ModelSpec, StudySpec, StudySpecError, load_study, parse_study

ROOT = Path(__file__).resolve().parents[2]

BASE = """\
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
batch_size = 32
[[models]]
name = "saved"
activations = { l1 = "l1.npy" }
[compare]
measures = ["cka", { name = "cka", kernel = "rbf" }, "rsa"]
profile = true
[stats]
permutations = 10
measures = ["cka"]
[functional]
probes = true
stitching = false
[report]
primary_measure = "cka"
"""


def _write(tmp_path: Path, text: str) -> Path:
    np.save(tmp_path / "l1.npy", np.zeros((100, 2)))
    p = tmp_path / "study.toml"
    p.write_text(text)
    return p


def _cli(args: list[str], monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the ``repscope`` entry point in-process: (exit code, stderr)."""
    monkeypatch.setattr(sys, "argv", ["repscope", *args])
    with pytest.raises(SystemExit) as info:
        main()
    return int(info.value.code or 0), capsys.readouterr().err


# (old, new, what the one-line message must say)
WHY = [
    ("n = 100", "n = -3", r"\[dataset\] n must be a positive integer; got -3"),
    ("n = 100", 'n = "abc"', r'\[dataset\] n must be an integer; got "abc"'),
    ('measures = ["cka"]\n', 'measures = ["ckaa"]\n',
     r"\[stats\] measures: unknown measure 'ckaa'; did you mean cka"),
    ('measures = ["cka"]\n', 'measures = ["procrustes"]\n',
     r'\[stats\] measures: "procrustes" is not one of the \[compare\] measures'),
    ('primary_measure = "cka"', 'primary_measure = "ckaa"',
     r'\[report\] primary_measure "ckaa" is not one of the \[compare\] measures .*did you mean '
     r'"cka"\?'),
    ("batch_size = 32", 'batch_size = "big"', r'\[\[models\]\] "a" batch_size must be an integer'),
    ("kwargs = { widths = [8, 8], seed = 0 }", "kwargs = [1, 2]",
     r'\[\[models\]\] "a" kwargs must be a table, e.g. kwargs = \{ seed = 0 \}; got \[1, 2\]'),
    ("permutations = 10", 'permutations = "lots"',
     r'\[stats\] permutations must be an integer; got "lots"'),
    ("profile = true", 'profile = "no"', r'\[compare\] profile must be true or false.*got "no"'),
    ("probes = true", 'probes = "no"', r'\[functional\] probes must be true or false'),
    ("stitching = false", 'stitching = "no"', r'\[functional\] stitching must be true or false'),
    ('measures = ["cka", { name = "cka", kernel = "rbf" }, "rsa"]', 'measures = "cka"',
     r'\[compare\] measures must be a list of measure names, e.g. \["cka"\]; got the string'),
]


@pytest.mark.parametrize(("old", "new", "message"), WHY, ids=[c[1] for c in WHY])
def test_why_cases_are_one_line_errors(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in BASE
    with pytest.raises(StudySpecError, match=message) as info:
        load_study(_write(tmp_path, BASE.replace(old, new, 1)))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("old", "new", "message"), WHY[:3] + WHY[8:], ids=lambda x: str(x)[:20])
def test_why_cases_exit_2_on_the_command_line(tmp_path: Path, old: str, new: str, message: str,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    study = _write(tmp_path, BASE.replace(old, new, 1))
    code, err = _cli(["run", str(study), "--out", str(tmp_path / "out"), "-q"], monkeypatch,
                     capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    assert not (tmp_path / "out").exists()  # refused before anything ran


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("permutations = 10", "permutation = 10",
         r'\[stats\] unknown key "permutation"; did you mean "permutations"\?'),
        ("[functional]", "[functionl]", r'unknown table \[functionl\]; did you mean "functional"'),
        ('kind = "digits"', 'kind = "digit"', r'kind must be one of .*did you mean "digits"'),
        ("batch_size = 32", "batch_size = 0", r"batch_size must be a positive integer; got 0"),
        ("n = 100", "n = 0", r"n must be a positive integer"),
        ("n = 100", "n = true", r"n must be an integer; got true"),
        ("n = 100", "n = 2.0", r"n must be an integer"),
        ("permutations = 10", "permutations = -1", r"permutations must be 0 or more"),
        ("permutations = 10", "bootstrap = -5", r"bootstrap must be 0 or more"),
        ("permutations = 10", "max_permutations = 0", r"max_permutations must be a positive"),
        ("permutations = 10", "seed = -1", r"\[stats\] seed must be 0 or more"),
        ("permutations = 10", "q = 0", r"q must be greater than 0"),
        ("permutations = 10", 'q = "0.1"', r"q must be a number"),
        ("permutations = 10", 'ci = "studentized"', r"ci must be one of jackknife"),
        ('name = "s"', "name = 3", r"\[study\] name must be a string"),
        ('layers = ["layer1", "layer2"]', 'layers = "layer1"',
         r'layers must be "all" or a list of layer names, e.g. \["layer1"\]'),
        ('layers = ["layer1", "layer2"]', "layers = []", r"layers must be \"all\" or a non-empty"),
        ("batch_size = 32", 'pooling = "mean"', r'"a" pooling applies to hf models only'),
        ('l1 = "l1.npy" }', 'l1 = "l1.npy" }\nkwargs = { seed = 1 }',
         r'"saved" kwargs applies to factory models only'),
        ('factory = "repscope.zoo.digits:pretrained"', 'factory = "os.system"',
         r'factory must be "package.module:function"'),
        ('name = "saved"', 'name = "a"', r'names must be unique; "a" appears more than once'),
        ("n = 100", 'n = 100\nlabels = "l1.npy"', r'labels applies to kind = "npy" only'),
        ('kind = "digits"', 'kind = "npy"', r'kind = "npy" needs path'),
        ('l1 = "l1.npy"', 'l1 = "missing.npy"', r'layer "l1": file not found'),
        ('measures = ["cka", { name', 'measures = [{ kernel = "rbf" }, { name',
         r"a measure table needs name"),
        ('measures = ["cka", { name', 'measures = [5, { name', r"entries are measure names"),
        ('kernel = "rbf"', 'kernel = "poly"', r"kernel must be one of"),
        ('[[models]]\nname = "a"', '[[models]]\nname = ""', r"name must not be empty"),
        ("permutations = 10", 'permutations = 10\ntrust = ["os"]',
         r"a study file cannot grant trust; pass --trust MODULE"),
    ],
)
def test_more_wrong_values(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in BASE, old
    with pytest.raises(StudySpecError, match=message) as info:
        load_study(_write(tmp_path, BASE.replace(old, new, 1)))
    assert "\n" not in str(info.value)


def test_several_problems_in_one_line(tmp_path: Path) -> None:
    text = BASE.replace("n = 100", "n = -3").replace("permutations = 10", 'permutations = "x"')
    with pytest.raises(StudySpecError, match=r"2 problems: .*n must be .*permutations must") as e:
        load_study(_write(tmp_path, text))
    assert "\n" not in str(e.value) and str(tmp_path / "study.toml") in str(e.value)


def test_no_models_and_not_a_table(tmp_path: Path) -> None:
    with pytest.raises(StudySpecError, match=r"at least one \[\[models\]\] table"):
        parse_study({"study": {"name": "x"}}, tmp_path)
    with pytest.raises(StudySpecError, match=r"\[\[models\]\] must be an array of tables"):
        parse_study({"models": {"name": "x"}}, tmp_path)
    with pytest.raises(StudySpecError, match=r"\[dataset\] must be a table"):
        parse_study({"dataset": "digits", "models": [{"name": "a", "activations": {}}]},
                    tmp_path)


def test_booleans_mean_what_they_say(tmp_path: Path) -> None:
    text = BASE.replace("profile = true", "profile = false").replace("probes = true",
                                                                     "probes = false")
    spec = load_study(_write(tmp_path, text))
    assert spec.profile is False and spec.probes is False and spec.stitching is False
    spec = load_study(_write(tmp_path, BASE))
    assert spec.profile is True and spec.probes is True


def test_valid_file_means_what_it_meant(tmp_path: Path) -> None:
    spec = load_study(_write(tmp_path, BASE))
    assert spec == StudySpec(
        name="s", path=(tmp_path / "study.toml").resolve(),
        dataset={"kind": "digits", "n": 100},
        models=(
            ModelSpec(name="a", kind="torch", layers=("layer1", "layer2"),
                      factory="repscope.zoo.digits:pretrained",
                      kwargs={"widths": [8, 8], "seed": 0}, batch_size=32),
            ModelSpec(name="saved", kind="activations", layers=("l1",),
                      activations={"l1": (tmp_path / "l1.npy").resolve()}),
        ),
        measures=("cka", {"name": "cka", "kernel": "rbf"}, "rsa"),
        permutations=10, stats_measures=("cka",), probes=True, primary_measure="cka",
    )


def test_shipped_example_and_demo_specs_keep_their_meaning() -> None:
    spec = load_study(ROOT / "examples" / "digits_study.toml")
    assert spec.name == "digits-mlps" and spec.dataset == {"kind": "digits", "split": "test"}
    assert [m.name for m in spec.models] == ["mlp64-seed0", "mlp64-seed1", "mlp32-seed0"]
    assert all(m.kind == "torch" and m.layers == ("layer1", "layer2", "layer3", "logits")
               and m.batch_size == 64 and m.factory == "repscope.zoo.digits:pretrained"
               for m in spec.models)
    assert spec.models[2].kwargs == {"widths": [32, 32, 32], "seed": 0}
    assert spec.measures == ("cka", "procrustes", "svcca", "mutual_knn", "rsa",
                             {"name": "cka", "kernel": "rbf"})
    assert (spec.pairs, spec.profile, spec.permutations, spec.bootstrap, spec.stats_measures,
            spec.probes, spec.stitching, spec.primary_measure, spec.ci_method, spec.fitted,
            spec.adjust, spec.q, spec.max_permutations, spec.seed) == (
        "cross", True, 50, 50, ("cka",), True, True, "cka", "jackknife", "heldout", "bh", 0.05,
        10_000, 0)
    for quick in (False, True):
        digits = digits_spec(quick)
        assert digits.stats_measures == ("cka",) and digits.primary_measure == "cka"
        text = sentences_spec(quick)
        assert all(m.kind == "hf" and m.layers == "all" and m.pooling == "mean"
                   for m in text.models)
        assert text.dataset == ({"kind": "sentences", "n": 60} if quick else
                                {"kind": "sentences"})


def test_defaults_are_the_documented_ones(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros((3, 2)))
    spec = parse_study({"models": [{"name": "a", "activations": {"l": "a.npy"}}]}, tmp_path)
    assert spec.name == "study" and spec.dataset == {"kind": "none"}
    assert spec.measures == ("cka", "procrustes", "mean_cca")
    assert (spec.pairs, spec.profile, spec.permutations, spec.bootstrap, spec.stats_measures,
            spec.probes, spec.stitching, spec.primary_measure) == (
        "cross", True, 0, 0, None, False, False, None)


def test_n_beyond_the_data_is_an_error_not_a_cut() -> None:
    with pytest.raises(StudySpecError, match=r"n = 5000, but the digits test split has only"):
        load_study_data({"kind": "digits", "n": 5000})
    assert load_study_data({"kind": "digits", "n": 7}).n == 7


def test_object_arrays_are_refused_without_unpickling(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    np.save(tmp_path / "obj.npy", np.array([_Boom(str(marker))], dtype=object),
            allow_pickle=True)
    np.save(tmp_path / "x.npy", np.zeros((4, 3)))
    spec = parse_study({"dataset": {"kind": "npy", "path": "obj.npy"},
                        "models": [{"name": "a", "activations": {"l": "x.npy"}}]}, tmp_path)
    with pytest.raises(StudySpecError, match=r"\[dataset\] path: .* cannot be loaded without "
                                             r"pickle"):
        load_study_data(spec.dataset)
    assert not marker.exists()


class _Boom:
    """Creates a file when unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (Path(self.path),))
