#!/usr/bin/env bash
# Build the benchmark-only environment of the tools repscope is compared with.
#
#   bash benchmarks/setup_peers.sh
#
# It lives in benchmarks/.venv-peers (git-ignored through its own .gitignore),
# never in the project venv: the test suite does not need any of these tools.
#  * rsatoolbox, ckatorch, pytorch-cka: from PyPI (pinned);
#  * netrep, anatome: not on PyPI; their public source trees are unpacked into
#    benchmarks/.peer-src/<name> (also git-ignored) and installed from there.
#    Pass their git directories (bare clones) as NETREP_GIT / ANATOME_GIT, or
#    unpack the sources into benchmarks/.peer-src/ yourself beforehand.
# torch is the local CPU build 2.13.0 (a plain `torch` would pull CUDA wheels).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv-peers"
src="$here/.peer-src"
python="${PYTHON:-python3}"

mkdir -p "$src"
printf '*\n' > "$src/.gitignore"
unpack() {  # name, git dir
  if [ ! -d "$src/$1" ] && [ -n "${2:-}" ] && [ -d "$2" ]; then
    mkdir -p "$src/$1" && git --git-dir="$2" archive HEAD | tar -x -C "$src/$1"
  fi
}
unpack netrep "${NETREP_GIT:-}"
unpack anatome "${ANATOME_GIT:-}"

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
printf '*\n' > "$venv/.gitignore"
pip="$venv/bin/python -m pip"
$pip install -q --upgrade pip
$pip install -q "torch==2.13.0" "numpy>=2" scipy scikit-learn tqdm threadpoolctl psutil
$pip install -q "rsatoolbox==0.3.2" "ckatorch==1.0.3" "pytorch-cka==1.1.3"
if [ -d "$src/netrep" ]; then
  $pip install -q --no-deps "$src/netrep"
else
  echo "netrep sources missing: set NETREP_GIT or unpack them into $src/netrep" >&2
fi
if [ -d "$src/anatome" ]; then
  # anatome's setup.py asks for torchvision, which its distance functions do not
  # use (only its model-hook class does); the benchmark stubs that import.
  $pip install -q --no-deps "$src/anatome"
else
  echo "anatome sources missing: set ANATOME_GIT or unpack them into $src/anatome" >&2
fi
"$venv/bin/python" - <<'PY'
import importlib.util
for name in ("rsatoolbox", "ckatorch", "cka", "netrep", "anatome"):
    spec = importlib.util.find_spec(name)
    print(f"{name:12s}", "ok" if spec else "MISSING")
PY
