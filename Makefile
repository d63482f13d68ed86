# The two set-up commands: `make bench` (main job) and `make test`.
# Both create/refresh .venv themselves on a fresh machine with Python >= 3.10.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP_BENCH := $(VENV)/.stamp-bench
STAMP_TEST := $(VENV)/.stamp-test
export PYTHONHASHSEED := 0

.PHONY: bench bench-full test lint typecheck doctest pytest notebooks clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP_BENCH): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[bench]'
	touch $@

$(STAMP_TEST): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[test]'
	touch $@ $(STAMP_BENCH)

bench: $(STAMP_BENCH)
	$(PY) -m benchmarks --quick

bench-full: $(STAMP_BENCH)
	$(PY) -m benchmarks

lint: $(STAMP_TEST)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP_TEST)
	$(BIN)/mypy

doctest: $(STAMP_TEST)
	$(BIN)/pytest -q --doctest-modules rectax -p no:cacheprovider

pytest: $(STAMP_TEST)
	$(BIN)/pytest -q -n 2 tests

notebooks: $(STAMP_TEST)
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then \
	  $(BIN)/pytest -q -n 2 --nbmake notebooks; \
	else echo "no notebooks yet"; fi

test: lint typecheck doctest pytest notebooks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
