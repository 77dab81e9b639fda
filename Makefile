# The two commands: `make test` (what CI runs) and `make run` (the whole stack, locally).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: test run install temporal-cli lint typecheck pytest format clean

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

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy .

pytest: install
	TEMPORAL_CLI="$$($(BIN)/python -m config.temporal_cli)" $(BIN)/pytest $(PYTEST_ARGS)

test: install temporal-cli lint typecheck pytest

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Dev server + Web UI (SQLite under .data/), provider sandbox and worker, in the foreground.
run: install
	TEMPORAL_CLI="$$($(BIN)/python -m config.temporal_cli)" $(BIN)/python -m starter.devstack

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
