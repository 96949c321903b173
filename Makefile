# Quick start: `make demo` then `make test`. Everything installs into .venv.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

.PHONY: install demo test lint serve bench clean browser

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[alibi,dev]'
	touch $(STAMP)

install: $(STAMP)

# Debian's Chromium for the browser tests (no browser download works offline).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium from Debian packages"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null; }

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: $(STAMP) browser lint
	$(VENV)/bin/pytest -q -p no:cacheprovider

demo: $(STAMP)
	$(VENV)/bin/driftwatch demo load
	$(VENV)/bin/driftwatch serve

bench: $(STAMP)
	$(PY) benchmarks/ingest.py
	$(PY) benchmarks/drift.py

clean:
	rm -rf $(VENV) data .pytest_cache tests/artifacts
