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
EXTRAS ?= ml,hf,store,test

.PHONY: demo test lint env browser clean

env: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH)"
	$(PIP) install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/quickstart.py

# Headless Chromium for the report's end-to-end browser test (Debian packages).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver)

test: $(STAMP) browser
	REPSCOPE_REQUIRE_BROWSER=1 $(PY) -m pytest -n 2 -q
	$(PY) -m ruff check src tests benchmarks examples

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks examples

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
