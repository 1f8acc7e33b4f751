"""The report: synthesis first, figures that read right, data once, escaped, offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from browser import (
    figure_status,
    ink_contrast,
    open_page,
    page_payload,
    panels_by_measure,
    resources_loaded,
    severe_console_errors,
)

import repscope
from repscope.report import build_report, write_report
from repscope.report.build import best_matches
from repscope.views.colormaps import COLOUR_MAPS, ink_for
from repscope.views.measure_notes import colour_domain, invariance_line


def _results(seed: int = 0, measures: tuple[str, ...] = ("cka", "procrustes")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for a, b in [("A", "B"), ("A", "C"), ("B", "C")]:
        for i, la in enumerate(["layer1", "layer2", "layer10"]):
            for j, lb in enumerate(["layer1", "layer2", "layer10"]):
                for m in measures:
                    diag = 0.9 if i == j else 0.3
                    v = diag + 0.05 * rng.uniform() if m != "procrustes" else 1 - diag
                    rows.append(dict(dataset="d1", model_a=a, layer_a=la, model_b=b,
                                     layer_b=lb, measure=m, params="{}", n=100, seed=0,
                                     value=v, ci_low=v - 0.1, ci_high=v + 0.1, pvalue=0.01,
                                     calibrated=v, warnings=""))
    return pd.DataFrame(rows)


EXTRAS = {
    "findings": ["A and B agree layer by layer."],
    "profiles": [{"model_a": "A", "layer_a": "layer1", "model_b": "B", "layer_b": "layer1",
                  "sentence": "Equivalent up to rotation (held-out R² 0.99)",
                  "strongest": "orthogonal",
                  "classes": [{"name": "permutation", "verdict": "partial", "score": 0.6,
                               "reason": "outside the margin"},
                              {"name": "orthogonal", "verdict": "equivalent", "score": 0.99,
                               "reason": "within the margin"}]}],
    "match_stability": [{"model_a": "A", "model_b": "B", "measure": "cka", "n_resamples": 50,
                         "records": [{"layer_a": "layer1", "best_layer_b": "layer1",
                                      "stability": 0.96, "ci_low": 0.86, "ci_high": 0.99,
                                      "runner_up": "layer2", "runner_up_frac": 0.04}]}],
    "probes": [{"model": "A", "layer": f"layer{i}", "accuracy": 0.5 + i / 10, "chance": 0.1,
                "ci_low": 0.4 + i / 10, "ci_high": 0.6 + i / 10, "n_test": 200}
               for i in (1, 2)],
    "stitching": [{"model_a": "A", "model_b": "B", "layers_a": ["layer1", "layer2"],
                   "layers_b": ["layer1", "layer2"], "matrix": [[1.0, 0.9], [0.8, 1.0]]}],
}


def test_best_matches_follow_measure_direction() -> None:
    df = _results()
    sim = best_matches(df, "cka", "A", "B")
    dist = best_matches(df, "procrustes", "A", "B")
    assert [m["layer_b"] for m in sim] == ["layer1", "layer2", "layer10"]
    assert [m["layer_b"] for m in dist] == ["layer1", "layer2", "layer10"]


def test_report_opens_with_the_synthesis_and_draws_from_data_once() -> None:
    html = build_report(_results(), EXTRAS, title="t").render()
    order = [html.index(f'<section id="{s}">') for s in
             ("glance", "findings", "layers", "agree", "explore", "models", "functional")]
    assert order == sorted(order)  # synthesis first, details on demand
    assert "<img" not in html  # no static PNG panels: figures are drawn from the data
    assert html.count('id="rs-data"') == 1
    payload = page_payload(html)
    assert len(payload["panels"]) == 6  # 2 measures × 3 pairs, one explorer to choose from
    assert html.count('<div class="fig" id="explorer-figure">') == 1
    # stability, verdict grid and profile sentences reach the tables
    assert "96 % [86 %, 99 %] of 50" in html and "layer2 (4 %)" in html
    assert 'class="v v-equivalent"' in html and "Equivalent up to rotation" in html
    # layer order is natural (layer2 before layer10) in the best-match table
    assert html.index("<td>layer2</td>") < html.index("<td>layer10</td>")


def test_stability_is_not_claimed_for_a_match_that_is_not_significant() -> None:
    df = _results()
    df.loc[(df.model_a == "A") & (df.model_b == "B"), "pvalue"] = 0.6  # nothing significant
    html = build_report(df, EXTRAS, title="t").render()
    assert "96 % [86 %, 99 %]" not in html and "– (the match is not significant)" in html
    glance = next(g for g in page_payload(html)["glance"] if g["b"] == "B" and g["a"] == "A")
    assert glance["stability_known"] == 0 and glance["stable"] == 0


def test_empty_results_raise() -> None:
    with pytest.raises(repscope.RepscopeError, match="no results"):
        build_report(pd.DataFrame(columns=["measure", "value"]))


# ----------------------------------------------------------- figures that read right
def test_annotation_ink_follows_the_colour_maps_luminance() -> None:
    viridis = COLOUR_MAPS["viridis"]
    assert ink_for(viridis[0]) == "white" and ink_for(viridis[-1]) == "black"
    assert ink_for("#ffffff") == "black" and ink_for("#000000") == "white"
    # the ink is a function of the colour only, never of the data's midpoint
    assert ink_for(viridis[10]) == ink_for(viridis[10])


def test_one_colour_scale_per_measure_and_labelled_direction() -> None:
    payload = page_payload(build_report(_results(), {}, title="t").render())
    for meta in payload["measures"].values():
        assert meta["arrow"] in ("↑ more alike", "↓ more alike")
        assert meta["domain"]["lo"] < meta["domain"]["hi"]
    assert payload["measures"]["procrustes"]["cmap"] == "viridis_r"
    # a narrow band of values inside a wide declared range uses the observed range
    assert colour_domain([-1.0, 1.0], [0.988, 0.996])["source"].startswith("observed")
    assert colour_domain([0.0, 1.0], [0.1, 0.95]) == {"lo": 0.0, "hi": 1.0,
                                                       "source": "declared range"}
    assert colour_domain([0.0, 1.0], [-0.2, 0.9])["lo"] == -0.2  # held-out R² below 0


def test_asymmetric_measures_state_their_direction_and_invariances_are_described() -> None:
    df = _results(measures=("cka", "linear_regression", "pwcca"))
    page = build_report(df, {}, title="t").render()
    meta = page_payload(page)["measures"]
    for label in ("linear_regression", "pwcca"):
        m = next(v for k, v in meta.items() if k.startswith(label))
        assert m["asymmetry"].startswith(f"Asymmetric: the cell in row r, column c is {label}")
    assert meta["cka"]["asymmetry"] == ""
    assert "Ignores rotations and reflections" in meta["cka"]["line"]
    assert invariance_line(["permutation"]).startswith("Ignores permutations of units; sees "
                                                       "rotations")
    assert "Asymmetric: the cell in row r" in page  # in the measures table, server-side


def test_model_pairs_on_different_inputs_say_so() -> None:
    df = pd.concat([_results(), _results(seed=1).assign(
        dataset="d2", model_a=lambda d: d.model_a + "2", model_b=lambda d: d.model_b + "2")])
    payload = page_payload(build_report(df, {}, title="t").render())
    mm = payload["model_matrix"]["cka"]
    i, j = mm["models"].index("A"), mm["models"].index("B2")
    assert mm["v"][i][j] is None and mm["status"][i][j] == "n/a: different inputs"
    assert mm["status"][i][i] == "same model"
    k = mm["models"].index("B")
    assert mm["status"][i][k] == "value" and mm["v"][i][k] > 0.9


def test_agreement_has_values_and_names_where_measures_disagree() -> None:
    df = _results(measures=("cka", "procrustes", "rsa"))
    df.loc[df.measure == "rsa", "value"] = np.random.default_rng(3).uniform(size=(df.measure
                                                                                  == "rsa").sum())
    agree = page_payload(build_report(df, {}, title="t").render())["agreement"]
    rho = np.array(agree["rho"], dtype=float)
    assert np.isfinite(rho).all() and np.allclose(np.diag(rho), 1)
    i, j = agree["measures"].index("cka"), agree["measures"].index("procrustes")
    assert rho[i, j] > 0.5  # distances negated: they agree
    worst = next(d for d in agree["disagree"] if {d["measure_1"], d["measure_2"]} ==
                 {"cka", "rsa"})
    assert len(worst["rows"]) == 5 and {"model_a", "layer_a", "rank_1"} <= set(worst["rows"][0])


def test_names_are_escaped_everywhere() -> None:
    df = _results()
    df["model_a"] = df["model_a"].replace("A", "<script>alert(1)</script>")
    page = build_report(df, {"description": "<b>x</b>"}, title="<i>t</i>").render()
    assert "<script>alert(1)</script>" not in page and "<b>x</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # as text in the tables
    assert "\\u003cscript\\u003e" in page  # and inside the embedded JSON


# ----------------------------------------------------------- Python entry points
def test_write_report_accepts_a_result_table_a_frame_and_a_study_folder(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 8))
    reps = {"A": {"l1": x, "l2": np.tanh(x)}, "B": {"l1": x @ rng.normal(size=(8, 8))}}
    table = repscope.grid(reps, measures=["cka", "procrustes"], progress=False)
    p1 = write_report(tmp_path / "t.html", table)
    p2 = write_report(tmp_path / "f.html", table.to_pandas())
    assert p1.exists() and p2.exists()
    single = repscope.compare(x, np.tanh(x), measures=["cka"])
    assert page_payload(build_report(single).render())["panels"][0]["a"] == "A"
    with pytest.raises(repscope.RepscopeError, match="no results database"):
        write_report(tmp_path / "x.html", tmp_path)
    with pytest.raises(repscope.RepscopeError, match="cannot|expected"):
        build_report(42)


def test_figures_never_change_the_callers_backend() -> None:
    import matplotlib

    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        table = repscope.grid({"A": {"l1": np.eye(30)[:, :5] + 0.1}, "B": {
            "l1": np.random.default_rng(0).normal(size=(30, 4))}}, measures=["cka"],
            progress=False)
        fig = table.heatmap("cka", "A", "B")
        build_report(table).render()
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)
    from matplotlib.figure import Figure

    assert isinstance(fig, Figure)


def test_result_table_heatmap_marks_cells_and_scales_per_measure() -> None:
    rng = np.random.default_rng(0)
    a = {f"l{i}": rng.normal(size=(80, 6)) for i in range(3)}
    b = {k: v @ rng.normal(size=(6, 6)) + 0.3 * i * rng.normal(size=(80, 6))
         for i, (k, v) in enumerate(a.items())}
    c = {k: rng.normal(size=(80, 5)) for k in ("l0", "l1")}
    table = repscope.grid({"A": a, "B": b, "C": c}, measures=["cka", "procrustes"],
                          progress=False)
    fig = table.heatmap("procrustes", "A", "B")
    ax = fig.axes[0]
    im = ax.images[0]
    assert "procrustes (distance, ↓ more alike)" == fig.axes[1].get_ylabel()
    cmap = im.get_cmap()
    for t in ax.texts:  # annotation ink follows each cell's own colour
        j, i = (round(c) for c in t.get_position())
        rgba = cmap(im.norm(im.get_array()[i, j]))
        assert t.get_color() == ink_for(rgba[:3])
    reds = [p for p in ax.patches if p.get_edgecolor()[:3] == (1.0, 0.0, 0.0)]
    assert len(reds) == 3  # each row's best match is boxed
    fig2 = table.heatmap("procrustes", "A", "C")
    assert fig2.axes[0].images[0].norm.vmin == im.norm.vmin  # one scale per measure
    mm = table.model_heatmap("cka")
    assert mm.axes[0].get_title() == "cka: model × model"
    with pytest.raises(repscope.RepscopeError, match="no rows of measure 'rsa'"):
        table.heatmap("rsa", "A", "B")


# ----------------------------------------------------------- in a browser
def test_report_renders_in_headless_chromium_and_controls_work(tmp_path: Path) -> None:
    path = write_report(tmp_path / "report.html", _results(), EXTRAS, title="browser test")
    drv = open_page(path)
    try:
        assert drv.title == "browser test"
        status = figure_status(drv)
        assert status["done"] == 1 and status["images"] == 0
        assert status["total"] >= 5 and status["rendered"] == status["total"], status
        assert severe_console_errors(drv) == []
        assert resources_loaded(drv) == []
        # the explorer: choosing another measure redraws the figure
        fig = drv.find_element("id", "explorer-figure")
        first = fig.get_attribute("data-measure")
        drv.execute_script("var s=document.getElementById('explorer-measure');"
                           "s.value='procrustes'; s.dispatchEvent(new Event('change'));")
        assert fig.get_attribute("data-measure") == "procrustes" != first
        label = drv.execute_script("return document.querySelector('#explorer-figure "
                                   ".cbar-label').textContent")
        assert label == "procrustes (distance, ↓ more alike)"
        # every annotation contrasts with its own cell (WCAG AA for text: ratio ≥ 4.5)
        cells = ink_contrast(drv)
        assert len(cells) > 20 and min(c["ratio"] for c in cells) >= 4.5, cells[:3]
        # agreement matrix: one value per cell
        n = drv.execute_script("return document.querySelectorAll('#agree-figure text.ann')"
                               ".length")
        assert n == 4
        # probe charts: chance line, error bars and values
        probe = drv.execute_script(
            "var f=document.getElementById('probe-0');return [f.querySelectorAll('.chance')"
            ".length, f.querySelectorAll('.errbar').length, f.querySelectorAll('text.ann')"
            ".length]")
        assert probe == [1, 2, 2]
        # hover shows the cell's numbers
        drv.execute_script("var r=document.querySelector('#explorer-figure rect.cell');"
                           "r.dispatchEvent(new MouseEvent('mousemove',{clientX:50,"
                           "clientY:50}));")
        tip = drv.find_element("id", "rs-tip").text
        assert "procrustes = " in tip and "95% CI" in tip
    finally:
        drv.quit()


def test_escaped_names_stay_text_in_the_browser(tmp_path: Path) -> None:
    df = _results()
    df["model_a"] = df["model_a"].replace("A", "<img src=x onerror=alert(1)>")
    path = write_report(tmp_path / "r.html", df, {}, title="t")
    drv = open_page(path)
    try:
        assert figure_status(drv)["images"] == 0  # not parsed as markup
        assert severe_console_errors(drv) == []
        options = drv.execute_script("return [...document.querySelectorAll("
                                     "'#explorer-pair option')].map(o => o.textContent)")
        assert any("<img src=x onerror=alert(1)>" in o for o in options)
    finally:
        drv.quit()


def test_panels_carry_their_marks() -> None:
    page = build_report(_results(), {}, title="t").render()
    (first, *_rest) = panels_by_measure(page)["cka"]
    assert first["boxed"] == "layer1→layer1; layer2→layer2; layer10→layer10"
    assert first["hatched"] == ""


def test_missing_matplotlib_or_pandas_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    table = repscope.grid({"A": {"l1": np.eye(30)[:, :5] + 0.1}, "B": {
        "l1": np.random.default_rng(0).normal(size=(30, 4))}}, measures=["cka"], progress=False)
    monkeypatch.setitem(__import__("sys").modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r'pip install "repscope\[ml\]"'):
        table.heatmap("cka", "A", "B")
    monkeypatch.setitem(__import__("sys").modules, "pandas", None)
    with pytest.raises(ImportError, match=r'pip install "repscope\[ml\]"'):
        build_report(table)
