# Quick start: `make demo` then `make test`. Everything installs into .venv.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
CORE := $(VENV)/.core
# what `make test` adds to the core (the demo needs none of it); spark: the Spark profile
# engine proven equal to the others in tests/storage/test_profile_engines.py
TEST_EXTRAS := alibi,dev,spark
PACKAGES := monitor storage alerts detectors dashboard

.PHONY: install demo test lint serve bench clean browser wrk

# uv installs (a well-kept installer, ~4x faster than pip here: the test extras in ~80 s against
# ~3.5 min, the same versions as pip resolves). pip only bootstraps it into the venv.
UV := $(VENV)/bin/uv
UV_INSTALL := $(UV) pip install --python $(PY)

$(UV):
	@echo "==> creating $(VENV) with uv, the installer"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --progress-bar on 'uv>=0.9,<1'

# The core only: what `driftwatch serve` and the demo need. uv prints what it resolves,
# downloads and installs; a first install downloads a few hundred MB.
$(CORE): pyproject.toml | $(UV)
	@echo "==> installing Driftwatch (core, no extras) into $(VENV)"
	@# --compile-bytecode: where PYTHONDONTWRITEBYTECODE is set (as on the development machine),
	@# a process compiles every module it imports that has no cached bytecode, at every start
	$(UV_INSTALL) --compile-bytecode -e .
	@# the project's bytecode, which an editable install does not compile: where
	@# PYTHONDONTWRITEBYTECODE is set, every `driftwatch` start would compile ~190 modules
	@# again (~0.25 s of the 3 s a server may take to be ready, issue 17)
	$(PY) -m compileall -q $(PACKAGES)
	touch $(CORE)

# The core plus the test extras (alibi-detect, pytest, ruff, playwright ...), in one round on a
# fresh clone (the core first and then the extras would install numpy twice: alibi pins < 2).
# Not compiled here (32,000 files, ~37 s): `make test` lets Python cache the bytecode of what the
# suite imports, a fraction of it. pyspark comes as a source distribution that uv builds (~25 s).
$(STAMP): pyproject.toml | $(UV)
	@echo "==> installing Driftwatch with the test extras [$(TEST_EXTRAS)] into $(VENV)"
	$(UV_INSTALL) -e '.[$(TEST_EXTRAS)]'
	$(PY) -m compileall -q $(PACKAGES)
	touch $(STAMP) $(CORE)

install: $(STAMP)

# Debian's Chromium for the browser tests (no browser download works offline).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium from Debian packages"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null; }

# Debian's wrk, the second load generator of benchmarks/ingest.py's writers phase (`bench`
# runs each shape through the Python client and through wrk; see docs/architecture.md).
wrk:
	@command -v wrk >/dev/null 2>&1 || { \
	  echo "installing wrk from Debian packages"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk) >/dev/null; }

# mypy's settings are in pyproject.toml; its cache (.mypy_cache) makes a re-run take seconds
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The suite on $(TEST_WORKERS) pytest-xdist workers; tests sharing a costly fixture (the demo
# site, Spark) stay in one worker (GROUPS in tests/conftest.py). Serially: pytest -p no:xdist
# Bytecode is cached even where PYTHONDONTWRITEBYTECODE is set: the suite starts many Python
# processes (the workers, servers, CLIs, Spark's), and without the cache each compiles the
# project and pytest rewrites every test module again (~11 s of CPU per worker here).
# The plugins the suite uses are named, not auto-loaded: pytest rewrites the asserts of every
# imported module of an auto-loaded plugin's distribution (dash, hypothesis, schemathesis ...:
# ~3 s of CPU per process at collection in a fresh venv, more as the tests import them).
TEST_WORKERS ?= 2
TEST_PLUGINS = -p xdist.plugin -p pytest_timeout -p _hypothesis_pytestplugin
test: $(STAMP) browser lint
	PYTHONDONTWRITEBYTECODE= PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 $(VENV)/bin/pytest -q \
	  -p no:cacheprovider $(TEST_PLUGINS) -n $(TEST_WORKERS) --dist loadgroup

# The realistic scenario (monitors, KPIs and alerts backfilled; see README for the times),
# the local webhook receiver in the background, then the server; Ctrl-C stops both.
# DEMO_WEBHOOK_PORT: the receiver's port, when 8765 is taken. A demo already built keeps the
# port its alert channel names: remove ./data (or `driftwatch demo build --force`) first.
DEMO_WEBHOOK_PORT ?= 8765
demo: $(CORE)
	DRIFTWATCH_ALERT_ALLOWED_HOSTS=127.0.0.1 $(VENV)/bin/driftwatch demo build \
	  --webhook-port $(DEMO_WEBHOOK_PORT)
	@$(VENV)/bin/driftwatch demo receiver --port $(DEMO_WEBHOOK_PORT) & pid=$$!; \
	  trap "kill $$pid" EXIT INT TERM; \
	  DRIFTWATCH_ALERT_ALLOWED_HOSTS=127.0.0.1 $(VENV)/bin/driftwatch serve

# Bytecode cached as in a user's venv after the first start (the test extras' install leaves
# the libraries uncompiled, and where PYTHONDONTWRITEBYTECODE is set each start compiles them)
bench: export PYTHONDONTWRITEBYTECODE =
bench: $(STAMP) wrk
	$(PY) benchmarks/ingest.py --writers-client both
	$(PY) benchmarks/drift.py
	$(PY) benchmarks/dashboard.py

clean:
	rm -rf $(VENV) data .pytest_cache tests/artifacts
