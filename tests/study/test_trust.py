"""Code in study files runs only when the caller trusts it (an allowlist).

Regression test of issue 14: ``factory = "os:system"`` with ``kwargs = { command = "touch X" }``
ran the shell command; it must be refused before anything runs.
"""

from __future__ import annotations

import sys
import uuid
from importlib import metadata
from pathlib import Path

import pytest
from typer.testing import CliRunner

from repscope.cli.main import app, main
from repscope.study import load_study, run_study
from repscope.study.spec import StudySpecError
from repscope.study.trust import ENTRY_POINT_GROUP, Trust, UntrustedCodeError

ROOT = Path(__file__).resolve().parents[2]

EVIL = """\
[dataset]
kind = "digits"
n = 20
[[models]]
name = "evil"
factory = "os:system"
kwargs = { command = "touch X" }
layers = ["x"]
"""


def _cli(args: list[str], monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["repscope", *args])
    with pytest.raises(SystemExit) as info:
        main()
    return int(info.value.code or 0), capsys.readouterr().err


def test_os_system_is_refused_before_anything_runs(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    study = tmp_path / "evil.toml"
    study.write_text(EVIL)
    code, err = _cli(["run", str(study), "--out", str(tmp_path / "out")], monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert "factory 'os:system' is not trusted, so it was not imported or run" in err
    assert "--trust os" in err
    assert not (tmp_path / "X").exists()
    assert not (tmp_path / "out").exists()
    with pytest.raises(UntrustedCodeError):  # the Python API is guarded the same way
        run_study(load_study(study), tmp_path / "out2", progress=False)
    assert not (tmp_path / "X").exists() and not (tmp_path / "out2").exists()


def test_a_study_file_cannot_trust_itself(tmp_path: Path) -> None:
    for extra in ('trust = ["os"]\n', '[trust]\nmodules = ["os"]\n'):
        study = tmp_path / "evil.toml"
        study.write_text(extra + EVIL if extra.startswith("trust") else EVIL + extra)
        with pytest.raises(StudySpecError, match="a study file cannot grant trust"):
            load_study(study)
    study.write_text(EVIL.replace('layers = ["x"]', 'layers = ["x"]\ntrusted = true'))
    with pytest.raises(StudySpecError, match="a study file cannot grant trust"):
        load_study(study)


def _local_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A local .py module with a factory; importing it leaves a marker file."""
    name = f"local_models_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        "import pathlib\n"
        "pathlib.Path(__file__).with_name('imported').touch()\n"
        "import torch\n\n"
        "def build(width=4):\n"
        "    torch.manual_seed(0)\n"
        "    return torch.nn.Sequential(torch.nn.Linear(64, width), torch.nn.Tanh())\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "local.toml").write_text(
        "[dataset]\nkind = \"digits\"\nn = 40\n"
        f"[[models]]\nname = \"a\"\nfactory = \"{name}:build\"\nlayers = [\"0\", \"1\"]\n"
        f"[[models]]\nname = \"b\"\nfactory = \"{name}:build\"\nkwargs = {{ width = 3 }}\n"
        "layers = [\"0\"]\n"
        "[compare]\nmeasures = [\"cka\"]\nprofile = false\n"
    )
    return name


def test_a_local_module_needs_trust(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = _local_module(tmp_path, monkeypatch)
    spec = load_study(tmp_path / "local.toml")
    with pytest.raises(UntrustedCodeError, match=rf"factory '{name}:build' is not trusted"):
        run_study(spec, tmp_path / "out", progress=False, report=False)
    assert not (tmp_path / "imported").exists() and name not in sys.modules
    with pytest.raises(UntrustedCodeError):  # trusting another module does not help
        run_study(spec, tmp_path / "out", progress=False, report=False, trust=[name + "x"])
    assert not (tmp_path / "imported").exists()
    outcome = run_study(spec, tmp_path / "out", progress=False, report=False, trust=[name])
    assert (tmp_path / "imported").exists() and outcome.n_rows == 2  # a0-b0, a1-b0


def test_trust_on_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    name = _local_module(tmp_path, monkeypatch)
    args = ["run", str(tmp_path / "local.toml"), "--out", str(tmp_path / "out"), "-q",
            "--no-report"]
    code, err = _cli(args, monkeypatch, capsys)
    assert code == 2 and f"--trust {name}" in err and not (tmp_path / "imported").exists()
    code, err = _cli([*args, "--trust", f"{name}:build"], monkeypatch, capsys)
    assert code == 0, err
    assert (tmp_path / "imported").exists()


def test_trust_rules() -> None:
    assert Trust().allows("repscope.zoo.digits:pretrained")  # registered in repscope.zoo
    assert not Trust().allows("repscope.zoo.digits:train_digits_mlp")  # not registered
    assert not Trust().allows("os:system")
    t = Trust.of(["mypkg", "other.mod:build"])
    assert t.allows("mypkg:f") and t.allows("mypkg.sub.deep:f")
    assert not t.allows("mypkgevil:f") and not t.allows("my:f")
    assert t.allows("other.mod:build") and not t.allows("other.mod:run")
    assert not t.allows("other:build")
    assert Trust.of("mypkg") == Trust(("mypkg",)) and Trust.of(None) == Trust()
    for bad in ("*", "", "os system", "a:b:c", "../x.py", 3):
        with pytest.raises(StudySpecError, match="trust entries are module names"):
            Trust.of([bad])


def test_installed_packages_register_factories(monkeypatch: pytest.MonkeyPatch) -> None:
    real = metadata.entry_points

    def entry_points(**kw):  # type: ignore[no-untyped-def]
        if kw.get("group") == ENTRY_POINT_GROUP:
            return [metadata.EntryPoint("net", "vendorpkg.models:build", ENTRY_POINT_GROUP)]
        return real(**kw)

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    assert Trust().allows("vendorpkg.models:build")
    assert not Trust().allows("vendorpkg.models:other")
    assert not Trust().allows("vendorpkg:build")


def test_shipped_example_needs_no_trust() -> None:
    Trust().check([load_study(ROOT / "examples" / "digits_study.toml")])


def test_run_help_says_factories_run_code() -> None:
    res = CliRunner().invoke(app, ["run", "--help"], terminal_width=200)
    text = " ".join(res.output.split())
    assert res.exit_code == 0
    assert "runs code like a script" in text and "--trust" in text
    assert "nothing in a study file can grant trust" in text
