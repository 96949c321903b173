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

# The realistic scenario (monitors, KPIs and alerts backfilled; about 1-2 min the first time),
# the local webhook receiver in the background, then the server; Ctrl-C stops both.
demo: $(STAMP)
	DRIFTWATCH_ALERT_ALLOWED_HOSTS=127.0.0.1 $(VENV)/bin/driftwatch demo build
	@$(VENV)/bin/driftwatch demo receiver & pid=$$!; trap "kill $$pid" EXIT INT TERM; \
	  DRIFTWATCH_ALERT_ALLOWED_HOSTS=127.0.0.1 $(VENV)/bin/driftwatch serve

bench: $(STAMP)
	$(PY) benchmarks/ingest.py
	$(PY) benchmarks/drift.py
	$(PY) benchmarks/dashboard.py

clean:
	rm -rf $(VENV) data .pytest_cache tests/artifacts
