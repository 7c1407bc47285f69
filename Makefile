# cartlift: two commands do everything on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
export CARTLIFT_HOME ?= $(CURDIR)/.cartlift
export BENTOML_DO_NOT_TRACK := true

.PHONY: help setup postgres chromium screenshots demo demo-drift test test-fast lint audit bench soak requirements serve clean

help:
	@echo "make demo   - install, generate the default shop, run the pipeline, show the champion"
	@echo "make demo-drift - the monitoring loop: drift -> retrain -> gate -> new champion served"
	@echo "make test   - install (PostgreSQL included) and run the test suite (unit, flows, data tiers)"
	@echo "make screenshots - the browser tests' screenshots into docs/images (needs chromium)"
	@echo "make lint   - ruff, mypy and the import contracts (lint-imports)"
	@echo "make audit  - bandit on the code, pip-audit on the locked dependencies (needs a vulnerability service)"
	@echo "make soak   - benchmarks/soak.py (10 minutes of mixed traffic on the real service)"
	@echo "make bench  - benchmarks/pipeline.py (200k and 2M events; slow)"

# uv bootstraps from PyPI; a Debian system Python refuses pip installs (PEP 668), so the
# fallback installs uv alone into the user's site (no system package is touched).
setup:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv 2>/dev/null || \
		python3 -m pip install --quiet --user --break-system-packages uv
	@$(UV) sync --frozen --extra kubernetes --quiet --compile-bytecode

demo: setup
	$(UV) run cartlift generate
	$(UV) run cartlift pipeline

demo-drift: setup
	$(UV) run cartlift demo-drift

# The production-profile test runs a real PostgreSQL server: Debian's package, installed
# when missing (as root, else through sudo).
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "Installing PostgreSQL (Debian's package) for the production-profile test"; \
		sudo=""; [ "$$(id -u)" -ne 0 ] && sudo="sudo"; \
		$$sudo apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq postgresql >/dev/null; \
	fi

# The browser tests (Evidently's UI, the quality report) drive Debian's chromium.
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
		echo "Installing Chromium (Debian's package) for the browser tests"; \
		sudo=""; [ "$$(id -u)" -ne 0 ] && sudo="sudo"; \
		$$sudo apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium >/dev/null; \
	fi

test: setup postgres chromium
	$(UV) run pytest -n 2 --dist loadfile

test-fast: setup
	$(UV) run pytest tests/unit

lint: setup
	$(UV) run ruff check flows models serving monitoring infra tests benchmarks
	$(UV) run ruff format --check flows models serving monitoring infra tests benchmarks
	$(UV) run mypy models monitoring infra
	$(UV) run lint-imports

audit: setup
	$(UV) run bandit -r flows models serving monitoring infra -q
	$(UV) export --frozen --no-hashes --no-emit-project --format requirements-txt -q > .audit-requirements.txt
	$(UV) run pip-audit -r .audit-requirements.txt --no-deps --disable-pip --progress-spinner off

# docs/images: the browser tests' screenshots (Evidently's dashboard and Tests tab, the
# quality report, the segments report), taken on the test suite's small shops.
screenshots: setup chromium
	CARTLIFT_SCREENSHOTS=$(CURDIR)/docs/images $(UV) run pytest -q -k browser tests/flows/test_demo.py tests/flows/test_quality.py tests/flows/test_segment.py

soak: setup
	$(UV) run python benchmarks/soak.py

bench: setup
	$(UV) run python benchmarks/pipeline.py

serve: setup
	$(UV) run cartlift serve

# The Bento's pinned requirements, exported from uv.lock without the orchestration the
# service never imports (the lean-serving import contract holds it so; a test checks).
SERVING_PRUNE := --prune prefect --prune prefect-dask --prune optuna --prune evidently --prune dask --prune distributed
requirements:
	$(UV) export --frozen --no-dev --no-hashes --no-emit-project --format requirements-txt -q $(SERVING_PRUNE) > serving/requirements.txt

clean:
	rm -rf .cartlift .pytest_cache .audit-requirements.txt
