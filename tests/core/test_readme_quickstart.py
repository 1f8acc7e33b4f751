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
