# Two commands for a newcomer: `make up` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= .xunjian

.PHONY: up test lint typecheck unit integration e2e venv deps-test services protos bench dist clean dashboards dashboard-previews

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

## Start a collector and a local agent on the embedded SQLite store with the built-in host checks.
up: venv
	$(BIN)/xunjian up --data-dir $(DATA)

## Install what the tests need (Debian packages, databases), then lint, type-check and run every test.
test: venv
	bash scripts/test-deps.sh
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/mypy --python-version 3.11 dashboards
	$(BIN)/pytest -q

lint: venv
	$(BIN)/ruff check .

typecheck: venv
	$(BIN)/mypy
	$(BIN)/mypy --python-version 3.11 dashboards

unit: venv
	$(BIN)/pytest -q tests/unit

## Rebuild the Grafana dashboards (dashboards/json/) from dashboards/*.py and the packs, lint them, update the docs.
dashboards: venv
	$(BIN)/python -m dashboards
	$(BIN)/python -m dashboards.lint
	$(BIN)/python -m dashboards.docs

## Redraw dashboards/previews/ from a live Prometheus, collector and agents (the e2e test, with 2 min of history).
dashboard-previews: venv
	XUNJIAN_PREVIEWS_DIR=$(CURDIR)/dashboards/previews $(BIN)/pytest -q tests/e2e/test_dashboards_live.py

protos: venv
	PATH=$(BIN):$$PATH bash scripts/gen_protos.sh

bench: venv
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/agent_footprint.py
	$(BIN)/python bench/agent_vs_zabbix.py
	$(BIN)/python bench/fleet.py
	$(BIN)/python bench/sql_guard.py
	$(BIN)/python bench/attacks.py
	$(BIN)/python bench/reconcile.py

## Wheel + wheelhouse + bundle for an offline (intranet) install; see docs/deploy.md for the target variables
## (DIST_PYTHON_VERSION, DIST_ARCH, DIST_GLIBC, DIST_EXTRAS).
dist: venv
	PYTHON=$(BIN)/python bash scripts/dist.sh

clean:
	rm -rf $(VENV) $(DATA) dist .pytest_cache .mypy_cache .ruff_cache
