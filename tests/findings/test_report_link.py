"""``repscope report`` links a findings page found next to the study folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from repscope.cli.main import app
from repscope.report.sources import findings_page


def _study_folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((30, 4))
    np.save(tmp_path / "a.npy", x)
    np.save(tmp_path / "b.npy", np.tanh(x @ rng.standard_normal((4, 3))))
    (tmp_path / "study.toml").write_text(
        '[study]\nname = "s"\n'
        '[[models]]\nname = "a"\nactivations = { l = "a.npy" }\n'
        '[[models]]\nname = "b"\nactivations = { l = "b.npy" }\n'
        '[compare]\nmeasures = ["cka"]\nprofile = false\n')
    out = tmp_path / "runs" / "study"
    res = CliRunner().invoke(app, ["run", str(tmp_path / "study.toml"), "--out", str(out),
                                   "--no-report", "-q"])
    assert res.exit_code == 0, res.output
    return out


def test_report_links_the_findings_page_only_when_present(tmp_path: Path) -> None:
    out = _study_folder(tmp_path)
    assert findings_page(out) is None
    res = CliRunner().invoke(app, ["report", str(out)])
    assert res.exit_code == 0, res.output
    assert 'id="findings-page"' not in (out / "report.html").read_text()
    page = tmp_path / "runs" / "findings-quick" / "findings.html"
    page.parent.mkdir()
    page.write_text("<html></html>")
    assert findings_page(out) == page
    res = CliRunner().invoke(app, ["report", str(out)])
    assert res.exit_code == 0, res.output
    html = (out / "report.html").read_text()
    assert 'id="findings-page"' in html and 'href="../findings-quick/findings.html"' in html
