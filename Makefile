# The commands the README shows. Each sets up what it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup test-tools demo test lint typecheck unit clean

$(BIN)/potluck: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(BIN)/potluck

setup: $(BIN)/potluck

# Prometheus, promtool and Alertmanager for the monitoring tests, Chromium for the UI's browser tests
# (Debian packages; installed when missing)
test-tools:
	bash scripts/test-tools.sh

demo: setup
	bash scripts/quickstart.sh

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src

typecheck: setup
	$(BIN)/mypy

unit: setup test-tools
	$(BIN)/pytest

test: lint typecheck unit

clean:
	rm -rf $(VENV) demo .mypy_cache .ruff_cache .pytest_cache
