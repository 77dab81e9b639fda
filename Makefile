# The two commands: `make test` (what CI runs) and `make run` (the whole stack, locally).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: test test-fast test-browser browser-deps screenshots reliability run install temporal-cli lint typecheck pytest format clean openapi bench cluster test-cluster temporal-server postgres-deps

install: $(VENV)/.installed

# Re-install whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version' 
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

# Prints the CLI's path: $$TEMPORAL_CLI, `temporal` on PATH, the cached build, or a Go build.
temporal-cli: install
	@$(BIN)/python -m config.temporal_cli

# Prints the paths of Temporal Server, its schema tool and the Web UI server for
# `make cluster`: $$TEMPORAL_SERVER/_SQL_TOOL/_UI_SERVER, the cached builds, or Go builds
# from the module proxy (config/temporal_server.py).
temporal-server: install
	@$(BIN)/python -m config.temporal_server

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy .

# pytest-xdist workers sharing one dev server and one sandbox (tests/conftest.py).
# 4 measured best of 2, 3, 4 on a 2-core machine (6 and 8 gain little): the tests
# mostly wait on timers and I/O. worksteal: a worker that runs dry takes queued
# tests from a busy one, so one long test (up to 65 s) holds no queue behind it.
# PYTEST_WORKERS=0 runs serially.
PYTEST_WORKERS ?= 4
XDIST = -n $(PYTEST_WORKERS) --dist worksteal

pytest: install
	TEMPORAL_CLI="$$($(BIN)/python -m config.temporal_cli)" $(BIN)/pytest $(XDIST) --ignore=tests/browser --ignore=tests/cluster $(PYTEST_ARGS)

test: install temporal-cli lint typecheck pytest test-browser test-cluster

# The sagas on Temporal Server as four services on PostgreSQL, faults included
# (tests/cluster, ~4 min). Serial: one cluster for the whole suite. PostgreSQL comes
# from apt when missing (postgres-deps); the server is built first (once, ~2-4 min) so
# that its build output is seen.
test-cluster: install postgres-deps
	$(BIN)/python -m config.temporal_server > /dev/null
	TEMPORAL_CLI="$$($(BIN)/python -m config.temporal_cli)" $(BIN)/pytest -p no:xdist tests/cluster $(PYTEST_ARGS)

# Debian's chromium (apt) and playwright-core (npm ci) for the browser test; never a
# downloaded browser build.
browser-deps:
	bash tests/browser/install.sh

# A real browser on the Web UI of `make run`'s stack (its own ports and data dir):
# decrypted input through the codec server, the encrypted form without it. Serial:
# each case starts a whole stack.
test-browser: install browser-deps
	TEMPORAL_CLI="$$($(BIN)/python -m config.temporal_cli)" $(BIN)/pytest -p no:xdist tests/browser $(PYTEST_ARGS)

# Refreshes the committed docs/ui-run-*.png from a browser-test run.
screenshots: install browser-deps
	SAVE_SCREENSHOTS=1 TEMPORAL_CLI="$$($(BIN)/python -m config.temporal_cli)" $(BIN)/pytest -p no:xdist tests/browser/test_web_ui.py $(PYTEST_ARGS)

# The fast tier only: workflow logic with every provider activity mocked (tests/fast).
test-fast: install
	TEMPORAL_CLI="$$($(BIN)/python -m config.temporal_cli)" $(BIN)/pytest $(XDIST) tests/fast $(PYTEST_ARGS)

# The reliability suite (reliability/, writes docs/reliability.md): seven scenarios, 200 sagas
# each, on their own dev server, sandbox, worker and API (~12 min on 2 cores). Not part of
# `make test`, which runs its smoke version (tests/test_reliability_smoke.py).
reliability: install
	TEMPORAL_CLI="$$($(BIN)/python -m config.temporal_cli)" $(BIN)/python -m reliability $(RELIABILITY_ARGS)

# Performance and scale against bare Temporal (bench/, writes docs/performance.md):
# overhead, a 10,000-saga month-end wave, provider calls, intake, operator requests while
# sagas start. About 30 min on 2 idle cores (the two 10,000-saga waves are 22 of them;
# docs/performance.md).
# Not part of `make test`. BENCH_ARGS=--quick for a few minutes. TARGET=cluster runs
# them on `make cluster`'s PostgreSQL-backed Temporal (private, on free ports, one
# worker) and writes sections of its own beside the dev server's; PostgreSQL comes from
# apt when missing (postgres-deps).
TARGET ?= dev
bench: install $(if $(filter cluster,$(TARGET)),postgres-deps)
	TEMPORAL_CLI="$$($(BIN)/python -m config.temporal_cli)" $(BIN)/python -m bench --target $(TARGET) $(BENCH_ARGS)

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Dev server + Web UI (SQLite under .data/), provider sandbox and worker, in the foreground.
run: install
	TEMPORAL_CLI="$$($(BIN)/python -m config.temporal_cli)" $(BIN)/python -m stacks.devstack

# The product on a PostgreSQL-backed Temporal cluster, in the foreground (README "Running
# on a cluster"): PostgreSQL under .data/cluster, Temporal's four services, Web UI,
# sandbox, codec server, CLUSTER_WORKERS workers (default 2) and the HTTP API.
cluster: install postgres-deps
	$(BIN)/python -m stacks.cluster

# Debian's PostgreSQL binaries (apt) for the cluster when none are found; no service.
postgres-deps: install
	bash deploy/install-postgres.sh $(BIN)/python

# Regenerates the committed OpenAPI document of the HTTP API from the code
# (tests/api/test_openapi.py fails when docs/openapi.json drifts).
openapi: install
	$(BIN)/python -m starter.api.openapi > docs/openapi.json.tmp && mv docs/openapi.json.tmp docs/openapi.json

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
