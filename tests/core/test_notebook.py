"""Notebook views (``_repr_html_``) of result tables and invariance profiles: escaped, short."""

from __future__ import annotations

import re

import numpy as np
import pytest

import repscope
from repscope.core.notebook import MAX_ROWS, html_table
from repscope.engine.table import ResultTable

EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def xy() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((60, 6))
    return x, x @ rng.standard_normal((6, 5)) + 0.1 * rng.standard_normal((60, 5))


def _cells(page: str) -> list[str]:
    return re.findall(r"<td [^>]*>(.*?)</td>", page)


def test_html_table_escapes_and_truncates() -> None:
    page = html_table(["a", EVIL], [["1", EVIL]], caption=EVIL, total=3, notes=[EVIL],
                      paragraphs=[EVIL])
    assert "<script>" not in page
    assert page.count("&lt;script&gt;") == 5
    assert "… 2 more rows" in page


def test_result_table_html_is_escaped(xy) -> None:
    reps = {(EVIL, "l1"): xy[0], ("b", "<b>l2</b>"): xy[1]}
    table = repscope.grid(reps, measures=["cka", "procrustes"])
    page = table._repr_html_()
    assert "<script>" not in page and "<b>l2</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b&gt;l2&lt;/b&gt;" in page
    header = re.findall(r"<th [^>]*>(.*?)</th>", page)
    assert header[:5] == ["model_a", "layer_a", "model_b", "layer_b", "measure"]
    assert "value" in header
    value = float(_cells(page)[header.index("value")])
    assert value == pytest.approx(table[0]["value"], rel=1e-3)  # formatted to 4 digits
    assert "more row" not in page


def test_result_table_html_truncates_long_tables() -> None:
    rows = [{"measure": "cka", "params": {}, "kind": "similarity", "value": i / 7}
            for i in range(MAX_ROWS + 12)]
    page = ResultTable(rows)._repr_html_()
    assert page.count("<tr>") == MAX_ROWS + 1  # header + shown rows
    assert "… 12 more rows" in page
    assert "ResultTable: 62 rows" in page
    assert "0.1429" in page  # 1/7 with four significant digits
    assert "0.14285714" not in page


def test_result_table_html_lists_notes_and_errors(xy) -> None:
    table = repscope.compare(xy[0], xy[1], measures=["cka", "permutation_procrustes"])
    page = table._repr_html_()
    assert "<li>error (permutation_procrustes)" in page  # needs equal widths: the error note
    assert "[1]" in page


def test_empty_result_table_html() -> None:
    assert "no rows" in ResultTable([])._repr_html_()


def test_profile_html_has_a_verdict_per_class_and_the_sentence(xy) -> None:
    p = repscope.profile(xy[0], xy[1], stats=False)
    page = p._repr_html_()
    header = re.findall(r"<th [^>]*>(.*?)</th>", page)
    assert header[:2] == ["class", "verdict"]
    cells = _cells(page)
    names = cells[:: len(header)]
    assert names == list(p.classes)
    import html

    assert f"<p>{html.escape(p.sentence)}</p>" in page
    assert "<script>" not in page
