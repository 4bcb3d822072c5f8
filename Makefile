# Two commands on a fresh machine (Python 3.11 and pip): `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)/dagster_home

.PHONY: install demo test lint bench dev sweep stack-down clean

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
