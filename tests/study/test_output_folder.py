"""One run per output folder; a second run on a finished folder re-uses its activations.

Regression tests of issue 14: two runs on one output folder (the second failed after all
its extraction work with "pass overwrite=True").
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repscope.storage.activation_store import ActivationStore
from repscope.study import load_study, run_study
from repscope.study.folder_lock import OWNER_NAME, FolderInUseError, FolderLock
from repscope.study.spec import StudySpecError

CMD = [sys.executable, "-c", "from repscope.cli.main import main; main()"]

STUDY = """\
[study]
name = "twice"
[dataset]
kind = "digits"
n = 60
[[models]]
name = "a"
factory = "repscope.zoo.digits:pretrained"
kwargs = { widths = [8, 8], seed = 0, epochs = 2 }
layers = ["layer1", "layer2"]
[[models]]
name = "b"
factory = "repscope.zoo.digits:pretrained"
kwargs = { widths = [8, 8], seed = 1, epochs = 2 }
layers = ["layer1", "layer2"]
[compare]
measures = ["cka", "procrustes"]
profile = false
"""


def _entries(out: Path) -> dict[str, tuple[str, int]]:
    """Store key -> (created, mtime of its metadata): unchanged when an entry is re-used."""
    store = ActivationStore(out / "activations", mode="r")
    return {k: (store.provenance(k)["created"],
                (store._entry_dir(k) / "zarr.json").stat().st_mtime_ns) for k in store.keys()}


def test_two_sequential_runs_both_succeed_and_reuse_activations(tmp_path: Path) -> None:
    study = tmp_path / "study.toml"
    study.write_text(STUDY)
    out = tmp_path / "out"
    first = run_study(load_study(study), out, progress=False, report=False)
    before = _entries(out)
    assert first.n_rows == 8 and len(before) == 4
    store = ActivationStore(out / "activations", mode="r")
    prov = store.provenance(store.keys()[0])
    assert prov["extractor_version"] == 1 and prov["weights_sha256"] and prov["dataset_sha256"]
    second = run_study(load_study(study), out, progress=False, report=False)
    assert second.n_rows == 8
    assert _entries(out) == before  # cache hits: nothing re-extracted or rewritten
    assert ActivationStore(out / "activations").staging_entries() == []
    # a changed model under the same name is not silently mixed with the old one
    study.write_text(STUDY.replace("seed = 1, epochs = 2", "seed = 2, epochs = 2"))
    with pytest.raises(StudySpecError, match=r"model 'b': .* holds activations of a different "
                                             r"'b' .*weights_sha256.*Use another --out folder"):
        run_study(load_study(study), out, progress=False, report=False)


def test_two_sequential_command_line_runs(tmp_path: Path) -> None:
    study = tmp_path / "study.toml"
    study.write_text(STUDY)
    out = tmp_path / "out"
    for _ in range(2):
        res = subprocess.run([*CMD, "run", str(study), "--out", str(out), "--json"],
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout.strip().splitlines()[-1])["rows"] == 8
    assert not (out / OWNER_NAME).exists()  # released


def test_a_second_run_names_the_process_that_holds_the_folder(tmp_path: Path) -> None:
    study = tmp_path / "study.toml"
    study.write_text(STUDY)
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from repscope.study.folder_lock import FolderLock\n"
         f"with FolderLock({str(out)!r}):\n"
         "    print('held', flush=True)\n"
         "    time.sleep(120)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        res = subprocess.run([*CMD, "run", str(study), "--out", str(out)],
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 2, res.stderr
        assert res.stderr.count("\n") == 1
        assert f"output folder {out} is in use by process {holder.pid}" in res.stderr
        assert "choose another --out folder" in res.stderr
        assert not (out / "activations").exists() and not (out / "results.sqlite").exists()
    finally:
        holder.kill()
        holder.wait()
    # the lock dies with its process (even killed): the folder is free again
    with FolderLock(out):
        pass


def test_concurrent_runs_on_one_folder(tmp_path: Path) -> None:
    """A real run holds the folder; a concurrent one stops at once and names it."""
    study = tmp_path / "study.toml"
    study.write_text(STUDY.replace("n = 60", "n = 500")
                     + "[stats]\npermutations = 50000\nmax_permutations = 50000\n")
    out = tmp_path / "out"
    first = subprocess.Popen([*CMD, "run", str(study), "--out", str(out), "-q", "--no-report"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while not (out / OWNER_NAME).exists() and first.poll() is None:
            assert time.time() < deadline
            time.sleep(0.05)
        second = subprocess.run([*CMD, "run", str(study), "--out", str(out), "-q"],
                                capture_output=True, text=True, timeout=300)
        still_running = first.poll() is None
    finally:
        first.kill()
        first.wait()
    assert still_running, first.stderr.read().decode() if first.stderr else ""
    assert second.returncode == 2, second.stderr
    assert f"is in use by process {first.pid}" in second.stderr


def test_lock_in_one_process(tmp_path: Path) -> None:
    with FolderLock(tmp_path / "o"):
        owner = json.loads((tmp_path / "o" / OWNER_NAME).read_text())
        assert owner["pid"] > 0 and owner["host"]
        with pytest.raises(FolderInUseError, match=rf"in use by process {owner['pid']}"):
            FolderLock(tmp_path / "o").__enter__()
    assert not (tmp_path / "o" / OWNER_NAME).exists()
    with FolderLock(tmp_path / "o"):  # free again
        pass
