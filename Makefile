# gansim set-up and entry points. Two commands do everything on a fresh machine:
#   make demo   - create .venv and run simulate -> train -> evaluate -> produce on the built-in simulator
#   make test   - create .venv and run the test suite
# GPU clusters: pick a CUDA torch build with TORCH_INDEX_URL (and optionally TORCH_SPEC), e.g.
#   make venv TORCH_INDEX_URL=<your CUDA wheel index, e.g. PyTorch's cu128 index>
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX_URL ?=
EXTRAS ?= dev,mpi
BIN := $(VENV)/bin
STAMP := $(VENV)/.gansim-installed
DEMO_DIR ?= runs/demo
PYTEST_ARGS ?=

.PHONY: venv demo test test-all test-phdf5 lint bench clean jets-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)" $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh $(DEMO_DIR)

test: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -m "not slow and not phdf5 and not gpu and not jets" $(PYTEST_ARGS)

test-all: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -m "not phdf5 and not gpu" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check gansim tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
