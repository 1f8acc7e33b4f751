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
    """Counts of embedded figures and of those that decoded and rendered."""
    return drv.execute_script(
        "const imgs=[...document.querySelectorAll('img.rs-figure')];"
        "return {total: imgs.length,"
        " rendered: imgs.filter(i => i.complete && i.naturalWidth > 0).length};"
    )


def severe_console_errors(drv: Any) -> list[str]:
    return [e["message"] for e in drv.get_log("browser") if e.get("level") == "SEVERE"]
