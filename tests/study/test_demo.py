"""The demo's own sanity results, asserted (digits part; the text models are optional)."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest
from browser import (
    figure_status,
    open_page,
    panels_by_measure,
    resources_loaded,
    save_first_screen,
    severe_console_errors,
)

from repscope.study.demo import run_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("demo")
    return run_demo(out, quick=True, include_text_models=False, progress=False)


def test_layer_identification_holds(demo) -> None:
    li = demo.extras["layer_identification"]
    assert li["layers"] == 4
    assert li["hits"] > li["layers"] / 2, li  # "most layers" (Kornblith et al. 2019)


def test_rotation_profile_says_equal_up_to_rotation(demo) -> None:
    rot = demo.extras["rotation_profile"]
    assert rot["strongest"] == "orthogonal"
    assert rot["sentence"].startswith("Equivalent up to rotation")
    verdicts = {c["name"]: c["verdict"] for c in rot["classes"]}
    assert verdicts["orthogonal"] == verdicts["linear"] == "equivalent"
    assert verdicts["permutation"] != "equivalent"


def test_seed_profile_is_coherent_and_says_what_is_shared(demo) -> None:
    """The demo's two seeds: nested verdicts never get stronger for a stricter class, and the
    profile says which share of the variance is predictable (the old profile called them
    'equal up to rotation' and 'different up to a linear map' at once)."""
    prof = demo.extras["seeds_profile"]
    rank = {"unrelated": 0, "partial": 1, "undetermined": 1.5, "equivalent": 2}
    v = {c["name"]: c["verdict"] for c in prof["classes"]}
    assert rank[v["permutation"]] <= rank[v["orthogonal"]] <= rank[v["linear"]]
    assert v["linear"] in ("equivalent", "partial")
    scores = {c["name"]: c["score"] for c in prof["classes"]}
    assert scores["permutation"] <= scores["orthogonal"] <= scores["linear"]
    assert {s["target"] for s in prof["shared"]} == {"A", "B"}
    assert "principal directions" in prof["sentence"]


def test_report_has_stitching_probes_profiles(demo) -> None:
    html = Path(demo.report_path).read_text()
    for section in ("Model stitching", "Linear probes", "Which layer corresponds to which (cka)",
                    "Do the probes predict the same class?",
                    "Invariance profiles", "Layer identification"):
        assert section in html
    stitch = demo.extras["stitching"][0]
    assert len(stitch["matrix"]) == 3 and all(0 <= v <= 1.2 for row in stitch["matrix"]
                                              for v in row)
    assert all(not math.isnan(p["accuracy"]) for p in demo.extras["probes"])


def test_demo_records_best_match_stability(demo) -> None:
    """extras["match_stability"]: every model pair under the primary measure (linear CKA)."""
    entries = demo.extras["match_stability"]
    assert [(e["model_a"], e["model_b"]) for e in entries] == [
        ("mlp256-seed0", "mlp256-seed1"), ("mlp256-seed0", "mlp64-seed0"),
        ("mlp256-seed1", "mlp64-seed0")]
    for e in entries:
        assert e["measure"] == "cka" and e["n_resamples"] == 50 and e["skipped"] is None
        assert [r["layer_a"] for r in e["records"]] == ["layer1", "layer2", "layer3", "logits"]
        for r in e["records"]:
            assert r["ci_low"] <= r["stability"] <= r["ci_high"]
            assert r["frequencies"][r["best_layer_b"]] == r["stability"]
    seeds = entries[0]["records"]
    hits = sum(r["best_layer_b"] == r["layer_a"] for r in seeds)
    assert hits == demo.extras["layer_identification"]["hits"]


def test_demo_probes_carry_chance_and_intervals(demo) -> None:
    for p in demo.extras["probes"]:
        assert p["n_classes"] == 10 and 0.1 <= p["chance"] < 0.2  # digits: balanced classes
        assert p["n_test"] == 162 and p["ci_low"] <= p["accuracy"] <= p["ci_high"]


def test_database_has_no_duplicates(demo) -> None:
    con = sqlite3.connect(demo.db_path)
    n, distinct = con.execute(
        "SELECT COUNT(*), COUNT(DISTINCT dataset||model_a||layer_a||model_b||layer_b||measure"
        "||params||stats||n||seed) FROM results").fetchone()
    assert n == distinct == demo.n_rows > 100


def test_demo_report_renders_in_browser(demo, tmp_path: Path) -> None:
    """Renders, logs no console error, fetches nothing, a control changes what is shown; the
    first screen is the screenshot in the docs (``REPSCOPE_SCREENSHOT_DIR=docs`` refreshes it)."""
    import os

    path = Path(demo.report_path)
    assert path.stat().st_size < 3_000_000  # the page budget, script and data included
    drv = open_page(path)
    try:
        status = figure_status(drv)
        assert status["done"] == 1 and status["images"] == 0
        assert status["total"] > 5 and status["rendered"] == status["total"], status
        assert severe_console_errors(drv) == []
        assert resources_loaded(drv) == []
        before = drv.find_element("id", "explorer-figure").get_attribute("data-pair")
        drv.execute_script("var s=document.getElementById('explorer-pair');"
                           "s.selectedIndex=s.options.length-1;"
                           "s.dispatchEvent(new Event('change'));")
        after = drv.find_element("id", "explorer-figure").get_attribute("data-pair")
        assert after != before
        shot = save_first_screen(drv, tmp_path / "report-first-screen.png")
        assert shot.stat().st_size > 20_000
        if os.environ.get("REPSCOPE_SCREENSHOT_DIR"):
            save_first_screen(drv, Path(os.environ["REPSCOPE_SCREENSHOT_DIR"])
                              / "report-first-screen.png")
    finally:
        drv.quit()


def test_demo_report_makes_only_honest_claims(demo) -> None:
    """Observations on the demo: unmarked floor p-values, no multiple-comparison control,
    and in-sample CCA/regression best matches boxed where every layer 'matches' the logits."""
    page = Path(demo.report_path).read_text()
    panels = panels_by_measure(page)
    measures = set(panels)
    for fitted in ("mean_cca", "svcca", "pwcca"):
        assert f"{fitted} (held-out)" in measures and fitted not in measures
        assert f"{fitted} (in-sample)" not in measures
    assert "≤ 0.00312" in page  # cka: 16 cells per figure → m = 320, floor 1/321
    assert any("BH q = 0.05 within this figure's family of 16 cells" in p["caption"]
               for p in panels["cka"])
    con = sqlite3.connect(demo.db_path)
    floors = {r[0] for r in con.execute("SELECT DISTINCT p_floor FROM results "
                                        "WHERE pvalue IS NOT NULL")}
    versions = {r[0] for r in con.execute("SELECT DISTINCT measure_version FROM results")}
    heldout = con.execute("SELECT COUNT(*) FROM results WHERE measure IN ('mean_cca', 'svcca', "
                          "'pwcca') AND heldout IS NULL").fetchone()[0]
    assert floors == {1 / 321} and versions == {1} and heldout == 0
