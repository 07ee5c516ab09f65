# gansim set-up and entry points. Two commands do everything on a fresh machine:
#   make demo   - create .venv and run simulate -> train -> evaluate -> produce on the built-in simulator
#   make test   - create .venv and run the test suite
# Real SLURM (2 nodes on this machine, root, Debian-like):
#   make slurm-up; make test-slurm; make slurm-down      (CI: .ci/run does exactly this)
# GPU clusters: pick a CUDA torch build with TORCH_INDEX_URL (and optionally TORCH_SPEC), e.g.
#   make venv TORCH_INDEX_URL=<your CUDA wheel index, e.g. PyTorch's cu128 index>
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX_URL ?=
EXTRAS ?= dev,mpi,jets
BIN := $(VENV)/bin
STAMP := $(VENV)/.gansim-installed
DEMO_DIR ?= runs/demo
DEMO_JETS ?= 0
PYTEST_ARGS ?=

.PHONY: venv demo test test-all test-phdf5 test-slurm slurm-up slurm-down lint bench bench-fidelity clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)" $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" DEMO_JETS=$(DEMO_JETS) bash scripts/demo.sh $(DEMO_DIR)

test: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -m "not slow and not phdf5 and not gpu and not slurm" $(PYTEST_ARGS)

test-all: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -m "not phdf5 and not gpu" $(PYTEST_ARGS)

# Real SLURM jobs (sbatch slurm/train.sh, tune.sh, produce.sh; salloc + cluster/ray_cluster.sh) on the cluster that
# `make slurm-up` starts (or any SLURM whose default partition has two nodes). GANSIM_REQUIRE_SLURM=1: a missing
# cluster fails the run instead of skipping (test-all skips these tests when no SLURM answers).
test-slurm: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" GANSIM_REQUIRE_SLURM=1 $(BIN)/python -m pytest -m slurm tests/test_slurm_real.py \
	  $(PYTEST_ARGS)

# The local 2-node SLURM cluster (root; installs slurm-wlm, munge, libpmix-dev with apt-get on first use).
slurm-up:
	bash cluster/slurm_local.sh up

slurm-down:
	bash cluster/slurm_local.sh down

# Parallel HDF5 (--layout single): needs .venv-phdf5 from `bash cluster/setup_phdf5.sh` (system Open MPI + HDF5).
test-phdf5:
	PATH="$(CURDIR)/.venv-phdf5/bin:/usr/bin:$$PATH" OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
	  .venv-phdf5/bin/python -m pytest -m phdf5 tests/test_produce_phdf5.py $(PYTEST_ARGS)

# Speed/size measurements; each writes its table (with the command) to benchmarks/results/.
bench: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" OMP_NUM_THREADS=1 bash -c '\
	  $(BIN)/python benchmarks/bench_simulate.py && \
	  $(BIN)/python benchmarks/bench_locally_connected.py --out benchmarks/results/locally_connected.md && \
	  $(BIN)/python benchmarks/bench_train.py && \
	  $(BIN)/python benchmarks/bench_produce.py && \
	  $(BIN)/python benchmarks/bench_tune.py'

# Fidelity of a recipe at a fixed budget against independent held-out showers: one row in
# benchmarks/results/fidelity.md (+ JSON, learning curve, figures). ~20 min on 2 cores with the defaults below
# (the recipe of the shipped e+ generator); e.g. make bench-fidelity FIDELITY_PARTICLE=piplus.
FIDELITY_CONFIG ?= calo-mlp-eplus
FIDELITY_PARTICLE ?= eplus
FIDELITY_NAME ?= $(FIDELITY_CONFIG)-$(FIDELITY_PARTICLE)-make
FIDELITY_ARGS ?= --epochs 30 --steps-per-epoch 50 --best --set train.checkpoint_every=2 --curve 3
bench-fidelity: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/bench_fidelity.py --config $(FIDELITY_CONFIG) \
	  --particle $(FIDELITY_PARTICLE) --name $(FIDELITY_NAME) $(FIDELITY_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check gansim tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
