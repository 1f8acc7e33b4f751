"""Coverage of the estimated paths' 95 % intervals over 50 seeds (slow: run with -m slow)."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_estimated_intervals_cover_the_exact_value():
    spec = importlib.util.spec_from_file_location(
        "big_n_coverage", ROOT / "benchmarks" / "big_n_coverage.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.main(["--n", "3000", "--d", "32", "--seeds", "50"])
    for key, rec in out["cases"].items():
        assert rec["coverage"] >= 0.9, (key, rec)
