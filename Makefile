# The two set-up commands: `make bench` (main job) and `make test`.
# Both create/refresh .venv themselves on a fresh machine with Python >= 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP_BENCH := $(VENV)/.stamp-bench
STAMP_TEST := $(VENV)/.stamp-test
export PYTHONHASHSEED := 0

.PHONY: bench bench-full test lint typecheck doctest pytest peer notebooks docs docs-test fuzz test-min test-torch clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Development dependencies are pyproject's [dependency-groups] (PEP 735), which pip reads from 25.1.
$(STAMP_BENCH): pyproject.toml | $(PY)
	$(PY) -m pip install -q 'pip>=25.1'
	$(PY) -m pip install -q -e . --group bench
	touch $@

$(STAMP_TEST): pyproject.toml | $(PY)
	$(PY) -m pip install -q 'pip>=25.1'
	$(PY) -m pip install -q -e '.[flax]' --group test
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

# The documentation site (docs/conf.py): API pages generated from each module's __all__, the
# docs pages and the notebooks (rendered, not executed). `docs-test` is what `make test` runs:
# warnings are errors, every cross-reference must resolve (-n), and the docs' code blocks run
# and must print their ```text blocks (sphinx.ext.doctest).
SPHINX := $(BIN)/sphinx-build -q -d docs/_build/doctrees docs
docs: $(STAMP_TEST)
	$(SPHINX) -j 2 docs/_build/html
	@echo "open docs/_build/html/index.html"

docs-test: $(STAMP_TEST)
	$(SPHINX) -j 2 -W --keep-going -n docs/_build/html
	$(SPHINX) -b doctest -W --keep-going docs/_build/doctest

test: lint typecheck doctest pytest peer notebooks docs-test

# The property suite (tests/test_fuzz.py) with its long profile: many random examples per
# property (`make test` runs it with a few derandomized ones). Not part of `make test`.
fuzz: $(STAMP_TEST)
	RECTAX_FUZZ_PROFILE=fuzz $(BIN)/pytest -q -p no:cacheprovider tests/test_fuzz.py

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
	$(MIN_VENV)/bin/python -m pip install -q --upgrade 'pip>=25.1'
	$(MIN_VENV)/bin/python -m pip install -q -e '.[flax]' --group test-tools $(MIN_PINS)
	$(MIN_VENV)/bin/pytest -q -n 2 -p no:cacheprovider tests

clean:
	rm -rf $(VENV) $(MIN_VENV) .pytest_cache .mypy_cache .ruff_cache docs/_build docs/generated
