"""The README measure table and docs/measures.md must match the registry."""

from __future__ import annotations

from pathlib import Path

from repscope.measures.catalogue import measures_reference, sync_readme

ROOT = Path(__file__).resolve().parents[2]


def test_readme_table_in_sync() -> None:
    readme = ROOT / "README.md"
    assert readme.read_text(encoding="utf-8") == sync_readme(readme), (
        "README measure table is stale: run `python -m repscope.measures.catalogue`"
    )


def test_measure_reference_in_sync() -> None:
    page = (ROOT / "docs" / "measures.md").read_text(encoding="utf-8")
    assert page == measures_reference(), (
        "docs/measures.md is stale: run python -m repscope.measures.catalogue"
    )
