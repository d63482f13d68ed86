# The two set-up commands: `make bench` (main job) and `make test`.
# Both create/refresh .venv themselves on a fresh machine with Python >= 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP_BENCH := $(VENV)/.stamp-bench
STAMP_TEST := $(VENV)/.stamp-test
export PYTHONHASHSEED := 0

.PHONY: bench bench-full test lint typecheck doctest pytest peer notebooks test-min test-torch clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP_BENCH): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[bench,targets]'
	touch $@

$(STAMP_TEST): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[test]'
	touch $@ $(STAMP_BENCH)

bench: $(STAMP_BENCH)
	$(PY) -m benchmarks --quick
	$(PY) -m benchmarks.few_bit --quick --output benchmarks/results/latest_few_bit.txt
	$(PY) -m benchmarks --target h100 --target-sizes small | tee benchmarks/results/latest_h100.md
	$(PY) -m benchmarks --target tpu-v5e --target-sizes small --zoo mnist,resnet,gpt-gelu,gpt-swiglu,mlp \
	  | tee benchmarks/results/latest_tpu-v5e.md

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

# jax's and flax's own tests with rectax swapped in (tests/peer/README.md), in both configurations.
peer: $(STAMP_TEST)
	$(BIN)/pytest -q -n 2 -p no:cacheprovider tests/peer
	JAX_ENABLE_X64=1 $(BIN)/pytest -q -n 2 -p no:cacheprovider tests/peer

notebooks: $(STAMP_TEST)
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then \
	  $(BIN)/pytest -q -n 2 --nbmake notebooks; \
	else echo "no notebooks yet"; fi

test: lint typecheck doctest pytest peer notebooks

# The torch parity tests (skipped in `make test`, where torch is absent): the pinned CPU build of
# torch into .venv, then the tests that compare with it. Optional; not part of `make test`.
test-torch: $(STAMP_TEST)
	$(PY) -m pip install -q torch==2.13.0
	$(BIN)/pytest -q -p no:cacheprovider tests -k torch

# The declared minimum versions (pyproject's floors) in their own venv, running the test suite.
# Not part of `make test`: run it when the floors change.
MIN_VENV := .venv-min
MIN_PINS := jax==0.8.1 jaxlib==0.8.1 flax==0.12.6 optax==0.2.3 numpy==2.0.0
test-min:
	$(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install -q --upgrade pip
	$(MIN_VENV)/bin/python -m pip install -q -e '.[test-tools]' $(MIN_PINS)
	$(MIN_VENV)/bin/pytest -q -n 2 -p no:cacheprovider tests

clean:
	rm -rf $(VENV) $(MIN_VENV) .pytest_cache .mypy_cache .ruff_cache
