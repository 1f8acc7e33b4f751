"""End-to-end `repscope run`: a real subprocess, killed mid-way, then resumed."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from repscope.cli.main import app

CMD = [sys.executable, "-c", "from repscope.cli.main import main; main()"]


def _study(tmp_path: Path, n_layers: int = 4, permutations: int = 400) -> Path:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 6))
    lines = []
    for model in ("a", "b"):
        acts = []
        for layer in range(n_layers):
            x = np.tanh(z @ rng.normal(size=(6, 20))) + 0.3 * rng.normal(size=(300, 20))
            np.save(tmp_path / f"{model}{layer}.npy", x)
            acts.append(f'l{layer} = "{model}{layer}.npy"')
        lines.append(f'[[models]]\nname = "{model}"\nactivations = {{ {", ".join(acts)} }}\n')
    text = (
        '[study]\nname = "kill-test"\n\n' + "\n".join(lines)
        + '\n[compare]\nmeasures = ["cka", "procrustes"]\nprofile = false\n'
        + f"\n[stats]\npermutations = {permutations}\nmeasures = [\"cka\", \"procrustes\"]\n"
    )
    path = tmp_path / "study.toml"
    path.write_text(text)
    return path


def _rows(db: Path) -> list[tuple]:
    if not db.exists():
        return []
    try:
        con = sqlite3.connect(db, timeout=5)
        rows = con.execute("SELECT model_a, layer_a, model_b, layer_b, measure, timestamp, "
                           "value FROM results").fetchall()
        con.close()
        return rows
    except sqlite3.OperationalError:  # table not created yet
        return []


def test_kill_and_resume(tmp_path: Path) -> None:
    study = _study(tmp_path)
    out = tmp_path / "out"
    db = out / "results.sqlite"
    proc = subprocess.Popen([*CMD, "run", str(study), "--out", str(out), "--no-report", "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while len(_rows(db)) < 4 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {r[:5]: r[5:] for r in _rows(db)}
    assert 0 < len(before) < 32, f"kill came too late or too early: {len(before)} rows"
    res = subprocess.run([*CMD, "run", str(study), "--out", str(out), "--no-report", "--json"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    after = _rows(db)
    keys = [r[:5] for r in after]
    assert len(keys) == len(set(keys)) == 32 == summary["rows"]  # 16 layer pairs × 2 measures
    for r in after:  # rows finished before the kill were not recomputed
        if r[:5] in before:
            assert r[5:] == before[r[:5]]


def test_run_report_and_errors(tmp_path: Path) -> None:
    study = _study(tmp_path, n_layers=2, permutations=0)
    runner = CliRunner()
    out = tmp_path / "o"
    res = runner.invoke(app, ["run", str(study), "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["rows"] == 8
    res = runner.invoke(app, ["report", str(out), "--title", "T"])
    assert res.exit_code == 0 and (out / "report.html").exists()
    assert "<title>T</title>" in (out / "report.html").read_text()
    bad = subprocess.run([*CMD, "run", str(tmp_path / "missing.toml")], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "study file not found" in bad.stderr
    study.write_text(study.read_text().replace('"cka"', '"ckaa"'))
    bad = subprocess.run([*CMD, "run", str(study)], capture_output=True, text=True)
    assert bad.returncode == 2 and "did you mean cka" in bad.stderr
    bad = subprocess.run([*CMD, "report", str(tmp_path / "nowhere")], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "no results database" in bad.stderr


@pytest.mark.parametrize("cmd", [[], ["run"], ["report"], ["demo"], ["compare"], ["profile"],
                                 ["measures"], ["paper"], ["llv"]])
def test_every_command_has_help(cmd: list[str]) -> None:
    res = CliRunner().invoke(app, [*cmd, "--help"])
    assert res.exit_code == 0 and "Usage" in res.output


def test_compare_and_profile_commands(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 5))
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", x @ q)
    runner = CliRunner()
    res = runner.invoke(app, ["compare", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"),
                              "-m", "cka", "-m", "procrustes", "--json"])
    assert res.exit_code == 0, res.output
    recs = {r["measure"]: r["value"] for r in json.loads(res.output)}
    assert recs["cka"] == pytest.approx(1.0) and recs["procrustes"] == pytest.approx(0, abs=1e-6)
    res = runner.invoke(app, ["profile", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"),
                              "--json"])
    assert res.exit_code == 0, res.output
    prof = json.loads(res.output)
    assert prof["strongest"] == "orthogonal"
    assert {c["name"]: c["verdict"] for c in prof["classes"]}["orthogonal"] == "equivalent"
    bad = subprocess.run([*CMD, "compare", str(tmp_path / "x.npy"), str(tmp_path / "no.npy")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "file not found" in bad.stderr
