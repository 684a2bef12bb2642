# The commands the README shows. Each sets up what it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# pytest worker processes (pytest-xdist); `make test WORKERS=0` runs the suite in one process
WORKERS ?= auto
PYTEST := $(BIN)/pytest -n $(WORKERS) --dist loadgroup

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
	$(PYTEST)

# The type check runs beside the tests (it prints its verdict when it ends); either failing fails.
test: lint test-tools
	@$(BIN)/mypy & mypy=$$!; \
	$(PYTEST); tests=$$?; \
	wait $$mypy || { echo "mypy --strict failed (above)"; exit 1; }; \
	exit $$tests

clean:
	rm -rf $(VENV) demo .mypy_cache .ruff_cache .pytest_cache
