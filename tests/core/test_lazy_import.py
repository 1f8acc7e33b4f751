"""``import repscope`` stays cheap, and every public module is reachable from it lazily."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

PROBE = """
import json, sys
import repscope
heavy = sorted(m for m in ("numpy", "scipy", "matplotlib", "pandas", "torch", "zarr",
                           "transformers") if m in sys.modules)
before = "repscope.report" in sys.modules
report = repscope.report
print(json.dumps({"heavy": heavy, "report_loaded_by_import": before,
                  "report": report.__name__, "build_report": hasattr(report, "build_report"),
                  "in_all": "report" in repscope.__all__, "in_dir": "report" in dir(repscope)}))
"""


def _probe(code: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get(
        "PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    return json.loads(out.splitlines()[-1])


def test_import_is_light_and_report_is_reachable() -> None:
    res = _probe(PROBE)
    assert res["heavy"] == []  # no NumPy, matplotlib, pandas, torch ... on import
    assert res["report_loaded_by_import"] is False  # loaded on first use only
    assert res["report"] == "repscope.report" and res["build_report"]
    assert res["in_all"] and res["in_dir"]


def test_star_import_includes_report() -> None:
    res = _probe("import json\nfrom repscope import *\n"
                 "print(json.dumps({'ok': report.__name__ == 'repscope.report'}))")
    assert res == {"ok": True}
