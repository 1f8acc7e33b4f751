"""Headless-Chromium helper for end-to-end report tests (no network)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--window-size=1280,900",
]


def require_browser() -> tuple[str, str]:
    """Paths of chromium and chromedriver; skip (or fail when required) if absent."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        chromium = None
    if not (chromium and driver):
        msg = "headless Chromium + chromedriver + selenium not available"
        if os.environ.get("REPSCOPE_REQUIRE_BROWSER") == "1":
            pytest.fail(msg + " (REPSCOPE_REQUIRE_BROWSER=1: `make test` installs them)")
        pytest.skip(msg)
    return chromium, driver


def open_page(path: Path) -> Any:
    """A selenium WebDriver that has loaded ``path`` (caller must ``quit()``)."""
    chromium, driver = require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for f in CHROMIUM_FLAGS:
        opts.add_argument(f)
    opts.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='rs-chrome-')}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(driver), options=opts)
    drv.set_page_load_timeout(60)
    drv.get(path.resolve().as_uri())
    return drv


def figure_status(drv: Any) -> dict[str, int]:
    """Counts of figure slots on the page and of those the script filled with an SVG
    drawing (``rendered``), and whether the script ran to its end."""
    return drv.execute_script(
        "const figs=[...document.querySelectorAll('div.fig')];"
        "return {total: figs.length,"
        " rendered: figs.filter(f => f.querySelector('svg.rs-svg rect')).length,"
        " done: document.body.getAttribute('data-rendered') === 'true' ? 1 : 0,"
        " images: document.querySelectorAll('img').length};"
    )


def severe_console_errors(drv: Any) -> list[str]:
    return [e["message"] for e in drv.get_log("browser") if e.get("level") == "SEVERE"]


def page_payload(page: str) -> dict[str, Any]:
    """The JSON a report embeds once (``<script type="application/json" id="rs-data">``)."""
    import json
    import re

    m = re.search(r'<script type="application/json" id="rs-data">(.*?)</script>', page, re.S)
    assert m, "the report embeds no data"
    return json.loads(m.group(1))


def panels_by_measure(page: str) -> dict[str, list[dict[str, Any]]]:
    """``{measure label: [layer × layer panels]}`` of a report page."""
    out: dict[str, list[dict[str, Any]]] = {}
    for p in page_payload(page)["panels"]:
        out.setdefault(p["measure"], []).append(p)
    return out


def resources_loaded(drv: Any) -> list[str]:
    """URLs the page fetched after loading (a self-contained report fetches none)."""
    return drv.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name);")


def ink_contrast(drv: Any) -> list[dict[str, Any]]:
    """For every annotated heatmap cell on the page: its fill, its text colour and their
    WCAG contrast ratio."""
    return drv.execute_script("""
      function lum(c){var m=c.match(/\\d+/g).map(Number).map(function(v){v/=255;
        return v<=0.04045?v/12.92:Math.pow((v+0.055)/1.055,2.4);});
        return 0.2126*m[0]+0.7152*m[1]+0.0722*m[2];}
      var out=[];
      document.querySelectorAll('svg.rs-svg').forEach(function(svg){
        var cells=svg.querySelectorAll('rect.cell'), anns=svg.querySelectorAll('text.ann');
        anns.forEach(function(t){
          var x=+t.getAttribute('x'), y=+t.getAttribute('y');
          cells.forEach(function(r){
            var rx=+r.getAttribute('x'), ry=+r.getAttribute('y'), w=+r.getAttribute('width'),
                h=+r.getAttribute('height');
            if(x>rx&&x<rx+w&&y>ry&&y<ry+h){
              var a=lum(getComputedStyle(r).fill), b=lum(getComputedStyle(t).fill);
              var hi=Math.max(a,b), lo=Math.min(a,b);
              out.push({fill:getComputedStyle(r).fill, ink:getComputedStyle(t).fill,
                        ratio:(hi+0.05)/(lo+0.05)});
            }
          });
        });
      });
      return out;""")


def save_first_screen(drv: Any, path: Path) -> Path:
    """Screenshot of the report's first screen (1280 × 900), as the docs show it."""
    drv.set_window_size(1280, 900)
    drv.execute_script("window.scrollTo(0, 0)")
    path.parent.mkdir(parents=True, exist_ok=True)
    drv.save_screenshot(str(path))
    return path
