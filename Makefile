# bayeskit: the two commands a fresh machine needs are `make lab` and `make test`.
# Both create the virtual environment first. Override the interpreter with PYTHON=/path/to/python3.12.

SHELL := /bin/bash
VENV  ?= .venv
# First Python >= 3.12 found: PATH (python3.13, python3.12, python3), then pyenv's installed versions.
PYTHON ?= $(shell ./tools/find-python)
BIN   := $(VENV)/bin
PY    := $(BIN)/python
STAMP := $(VENV)/.installed
JOBS  ?= 2
# PyTensor (PyMC) links OpenBLAS when Debian's libopenblas-dev is there, instead of warning.
ifneq ($(wildcard /usr/lib/*/libopenblas.so),)
export PYTENSOR_FLAGS ?= blas__ldflags=-lopenblas
endif

.PHONY: help venv lab test test-fast notebooks browser binder-check bench bench-quick torch-env site lint doctor clean

help:
	@echo "make lab        set up and open the notebook series in JupyterLab"
	@echo "make test       set up and run the whole test suite (unit, notebooks, browser, binder)"
	@echo "make test-fast  unit tests only"
	@echo "make site       the static site of the series from the notebooks make test executed"
	@echo "make bench      run the benchmarks (results in benchmarks/results/)"
	@echo "make torch-env  build .venv-torch (Python 3.11, CPU torch, BoTorch, vbll) for the PyTorch comparisons"
	@echo "make doctor     print versions, devices and float64 status"

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "No Python >= 3.12 found: install one or pass PYTHON=/path/to/python3.12" >&2; exit 1; }
	@echo "Using $(PYTHON) ($$($(PYTHON) --version))"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,bench,notebooks]'
	touch $(STAMP)

venv: $(STAMP)

# Jupyter refuses to run as root unless told; containers and fresh machines often are root.
LAB_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: $(STAMP)
	$(BIN)/jupyter lab $(LAB_FLAGS) notebooks/00_index.ipynb

doctor: $(STAMP)
	$(BIN)/bayeskit doctor

# The whole suite: library tests, every notebook in fast mode, the browser test and the Binder build.
# Two pytest workers already fill two cores: one BLAS thread each, so OpenBLAS threads do not
# busy-wait against each other (which made small LAPACK calls 1000x slower on a loaded machine).
TEST_ENV := BAYESKIT_FAST=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
# After the tests, the static site of the executed series (test-artifacts/site) is built from the
# notebooks they executed: every notebook runs once.
test: $(STAMP)
	$(TEST_ENV) $(BIN)/pytest -n $(JOBS) --dist loadgroup tests
	$(PY) tools/build_site.py

site: $(STAMP)
	$(PY) tools/build_site.py

test-fast: $(STAMP)
	$(TEST_ENV) $(BIN)/pytest -n $(JOBS) --dist loadgroup -m "not notebook and not browser and not binder" tests

lint: $(STAMP)
	$(BIN)/ruff check bayeskit widgets data tests benchmarks

BENCHMARKS := benchmarks/gp.py benchmarks/filters.py benchmarks/bo.py benchmarks/vae.py benchmarks/bll.py \
              benchmarks/explorer_latency.py benchmarks/device.py

bench: $(STAMP)
	set -e; for b in $(BENCHMARKS); do $(PY) $$b; done

bench-quick: $(STAMP)
	set -e; for b in $(BENCHMARKS); do $(PY) $$b --quick; done

# The PyTorch libraries the benchmarks compare against live in their own Python 3.11 environment
# (the CPU torch wheel is installed first and pinned, so no dependency pulls a CUDA build).
TORCH_VENV   ?= .venv-torch
TORCH_PYTHON ?= $(shell ./tools/find-python 3.11)
$(TORCH_VENV)/.installed: benchmarks/requirements-torch.txt
	@test -n "$(TORCH_PYTHON)" || { echo "No Python 3.11 found: pass TORCH_PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(TORCH_PYTHON) -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(TORCH_VENV)/bin/python -m pip install --quiet torch==2.13.0
	$(TORCH_VENV)/bin/python -m pip install --quiet -r benchmarks/requirements-torch.txt
	touch $@

torch-env: $(TORCH_VENV)/.installed

clean:
	rm -rf $(VENV) $(TORCH_VENV) build dist *.egg-info .pytest_cache test-artifacts
