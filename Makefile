# Two commands on a fresh machine (Python 3.11 and pip): `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)/dagster_home

.PHONY: install demo test test-ui lint bench dev sweep stack-down clean

$(VENV)/installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

install: $(VENV)/installed

demo: install
	$(BIN)/repro-pipeline demo

test: lint
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/dg check defs
	$(BIN)/python -m pytest

# The real-browser test: Playwright drives Debian's chromium (installed with apt when missing), never a
# browser download; screenshots go to ui-screenshots/.
test-ui: install
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,ui]'
	$(BIN)/python -m pytest -m ui repro_pipeline_tests/ui

lint: install
	$(BIN)/ruff check repro_pipeline repro_pipeline_tests
	$(BIN)/ruff format --check repro_pipeline repro_pipeline_tests
	$(BIN)/mypy

bench: install
	$(BIN)/python -m repro_pipeline_tests.bench $(BENCH_ARGS)

dev: install
	$(BIN)/repro-pipeline dev

sweep: install
	$(BIN)/repro-pipeline sweep

stack-down: install
	$(BIN)/repro-pipeline stack down

clean: stack-down
	$(BIN)/repro-pipeline stack destroy
	rm -rf $(VENV)
