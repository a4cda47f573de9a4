# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python

.PHONY: demo test lint typecheck unit bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.demo-installed: $(BIN)/activate pyproject.toml
	$(PY) -m pip install --quiet -e '.[demo]'
	touch $@

$(VENV)/.test-installed: $(BIN)/activate pyproject.toml
	$(PY) -m pip install --quiet -e '.[test,demo]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

$(VENV)/.bench-installed: $(VENV)/.test-installed
	$(PY) -m pip install --quiet -e '.[bench]'
	touch $@

## The main job: an LCEL chain and an agent that generate and edit images into ./out/
demo: $(VENV)/.demo-installed
	$(PY) examples/demo.py

## Lint, type-check and run the whole suite (unit, standard LangChain tests, simulator-backed, notebooks)
test: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(PY) -m pytest -q

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.test-installed
	$(BIN)/mypy

bench: $(VENV)/.bench-installed
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
