# Two commands for a fresh clone (see README):  make run   and   make test
# Both create .venv with python3 -m venv and install the project into it when needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup browser-deps run test test-fast test-unit test-notebooks summary tables benchmark clean-cache

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch is pinned to the CPU build 2.13.0 in pyproject.toml (an unpinned torch pulls CUDA)
	# the cluster extra (Dask) too, so that the Dask sweep's tests run rather than skip
	$(PY) -m pip install --quiet -e ".[cluster]"
	touch $@

setup: $(VENV)/.installed

# Headless Chromium for tests/test_browser.py (skipped without it, but required when CI=true).
# Installs Debian's chromium package (about 40 s) unless $SIER_CHROMIUM or chromium is there;
# needs root and apt-get.
browser-deps:
	@if [ -n "$${SIER_CHROMIUM:-}" ] && [ -x "$$SIER_CHROMIUM" ]; then \
	  echo "browser-deps: using SIER_CHROMIUM=$$SIER_CHROMIUM"; \
	elif command -v chromium >/dev/null 2>&1; then \
	  echo "browser-deps: $$(command -v chromium) is installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; \
	else \
	  echo "browser-deps: no chromium on PATH and not root with apt-get: install Chromium yourself" \
	       "(e.g. sudo apt-get install chromium) or point SIER_CHROMIUM at it" >&2; \
	  exit 1; \
	fi

# The main job: the headline on Emo-DB with the recipe, without AL and at its validation-chosen γ
# (`sier reproduce --literal`: the paper-literal headline instead).
run: setup
	$(VENV)/bin/sier reproduce

# Unit tests, real-corpus tests (when SIER_DATA holds the corpora) and the notebooks under nbval:
# exactly `pytest --nbval` at the root (nbval's options are in pyproject.toml).
test: setup
	$(PY) -m pytest -q --nbval

# The tests not marked slow (no network training, notebook execution, sweep or whole-corpus pass; each
# under ~5 s): about 1.5 minutes on 2 cores.
test-fast: setup
	$(PY) -m pytest -q -m "not slow" tests

test-unit: setup
	$(PY) -m pytest -q tests

test-notebooks: setup
	$(PY) -m pytest -q --nbval notebooks

tables: setup
	$(VENV)/bin/sier tables

summary: setup
	$(VENV)/bin/sier summary

benchmark: setup
	$(VENV)/bin/sier benchmark checksums
	$(VENV)/bin/sier benchmark features
	$(VENV)/bin/sier benchmark train
	$(VENV)/bin/sier benchmark encoders
	$(VENV)/bin/sier benchmark sweep
	$(VENV)/bin/sier benchmark lengths
	$(VENV)/bin/sier benchmark recipe
	$(VENV)/bin/sier benchmark cluster

clean-cache:
	rm -rf cache
