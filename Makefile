# Small task runner: `make demo` (install + run the whole graph on embedded defaults), `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint dev bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

demo: install
	$(BIN)/rcm demo

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check rcm_assets rcm_assets_tests benchmarks

dev: install
	$(BIN)/rcm dev

bench: install
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) data .dagster_home
