# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python

.PHONY: demo test test-lowest dist-check lint typecheck unit bench notebooks clean

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

$(VENV)/.docs-installed: $(VENV)/.test-installed
	$(PY) -m pip install --quiet -e '.[docs]'
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
	$(MAKE) --no-print-directory dist-check
	$(PY) -m pytest -q

## Build the sdist and the wheel (the wheel from the sdist) into a temp dir, `twine check` them,
## and check what they carry: LICENSE in both, tests/ in the sdist, no tests in the wheel.
## Built from a copy of the files git would commit: the editable install's egg-info (its stale
## SOURCES.txt feeds the sdist) and other ignored files stay out, and the work tree is not touched.
dist-check: $(VENV)/.test-installed
	@set -e; d=$$(mktemp -d); trap 'rm -rf "$$d"' EXIT; mkdir "$$d/src" "$$d/dist"; \
	git ls-files -z -co --exclude-standard \
		| tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$$d/src"; \
	if ! $(PY) -m build --outdir "$$d/dist" "$$d/src" >"$$d/build.log" 2>&1; then \
		cat "$$d/build.log"; exit 1; fi; \
	$(BIN)/twine --no-color check --strict "$$d"/dist/*.tar.gz "$$d"/dist/*.whl; \
	$(PY) -c "$$DIST_CHECK" "$$d/dist"

export DIST_CHECK
define DIST_CHECK
import pathlib, sys, tarfile, zipfile
d = pathlib.Path(sys.argv[1])
(sdist,) = d.glob("*.tar.gz")
(wheel,) = d.glob("*.whl")
s = [n.split("/", 1)[1] for n in tarfile.open(sdist).getnames() if "/" in n]
w = zipfile.ZipFile(wheel).namelist()
need = ["LICENSE", "README.md", "pyproject.toml", "tests/conftest.py", "tests/unit_tests/__init__.py", "langchain_nanobanana/py.typed"]
bad = [f"sdist lacks {n}" for n in need if n not in s]
bad += [f"sdist carries {n}" for n in s if n.startswith((".venv", ".git/", ".ci/")) or "__pycache__" in n]
bad += ["wheel lacks LICENSE"] * (not any(n.endswith(".dist-info/licenses/LICENSE") for n in w))
bad += ["wheel lacks py.typed"] * ("langchain_nanobanana/py.typed" not in w)
bad += [f"wheel carries {n}" for n in w if n.startswith("tests/")]
sys.exit("\n".join(bad)) if bad else print(f"dist-check: {sdist.name} ({len(s)} files), {wheel.name} ({len(w)} files)")
endef

## The unit tests on the lowest versions pyproject.toml allows (.ci/constraints-lowest.txt), in a
## fresh venv with only the test runner: no extras. Any pytest exit but 0 fails, 5 (no tests) too.
VENV_LOWEST ?= .venv-lowest
LOWEST_PINS := .ci/constraints-lowest.txt
test-lowest:
	rm -rf $(VENV_LOWEST)
	$(PYTHON) -m venv $(VENV_LOWEST)
	echo '*' >$(VENV_LOWEST)/.gitignore
	$(VENV_LOWEST)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_LOWEST)/bin/python -m pip install --quiet -c $(LOWEST_PINS) -e . \
		pytest pytest-socket pytest-asyncio pytest-timeout hypothesis
	@$(VENV_LOWEST)/bin/python -c "$$LOWEST_CHECK" $(LOWEST_PINS)
	$(VENV_LOWEST)/bin/python -m pytest -q -p no:cacheprovider tests/unit_tests \
		--ignore=tests/unit_tests/test_standard.py

export LOWEST_CHECK
define LOWEST_CHECK
import re, sys
from importlib.metadata import requires, version
pins = [line.split("#")[0].strip() for line in open(sys.argv[1])]
pins = dict(p.split("==") for p in pins if p)
num = lambda v: tuple(map(int, v.split("."))) + (0,) * (3 - v.count("."))
bad = []
for req in requires("langchain-nanobanana"):
    if "extra ==" in req:
        continue
    name, floor = re.match(r"([A-Za-z0-9_.-]+).*>=([0-9.]+)", req).groups()
    if name not in pins or num(pins[name]) != num(floor):
        bad.append(f"{sys.argv[1]} must pin {name}=={floor} (pyproject: {req})")
bad += [f"{n} {version(n)} installed, pinned {v}" for n, v in pins.items() if version(n) != v]
sys.exit("\n".join(bad)) if bad else print("floors:", ", ".join(f"{n}=={v}" for n, v in pins.items()))
endef

## Execute every notebook (notebooks/, docs/integrations/) against the simulator and store it with
## its outputs: images as thumbnails, the simulator's port and temporary paths pinned, each
## notebook under 1 MB. Commit the result.
notebooks: $(VENV)/.docs-installed
	$(PY) scripts/execute_notebooks.py

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.test-installed
	$(BIN)/mypy

bench: $(VENV)/.bench-installed
	$(PY) benchmarks/run.py
	$(PY) benchmarks/concurrency.py
	$(PY) benchmarks/journal_bench.py
	$(PY) benchmarks/fleet_bench.py
	$(PY) benchmarks/cli_bench.py
	$(PY) benchmarks/cli_start.py
	$(PY) benchmarks/rate_bench.py

clean:
	rm -rf $(VENV) $(VENV_LOWEST) out .pytest_cache .mypy_cache .ruff_cache
