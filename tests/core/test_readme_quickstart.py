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


def test_example_script_runs(capsys) -> None:
    import runpy

    runpy.run_path(str(README.parent / "examples" / "quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "X vs rotated X: Equivalent up to rotation" in out
    assert "X vs linearly mixed X: Equivalent up to an invertible linear map" in out
    assert "X vs noise: No relation detected" in out
