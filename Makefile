# Quick start (README): `make run` sets up and runs the main job, `make test` sets up and runs
# the tests. Both create the virtual environment .venv on first use (Python 3.11).
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run oracle test test-habitat-sim test-gpu data bench lint

# the venv takes ~7 GB (torch 2.14.1 is a CUDA build): say so before pip fails half-way
VENV_MIN_FREE_GB ?= 8
# installs are pinned by constraints.txt (the versions CI passed with; how to refresh it: its header)
$(STAMP): setup.py pyproject.toml constraints.txt
	@free=$$(df -Pk . | awk 'NR==2 {print int($$4 / 1048576)}'); \
	if [ "$$free" -lt $(VENV_MIN_FREE_GB) ]; then \
		echo "error: $(VENV) needs about $(VENV_MIN_FREE_GB) GB free in $(CURDIR), only $$free GB is" >&2; \
		exit 1; \
	fi
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade -c constraints.txt pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

# The main job: train the tiny FIH model with online DAgger on the bundled data (FIHSim-v0),
# then evaluate its last checkpoint on val_seen episodes (stats json under data/fih/).
RUN_CFG := --config-name=fih/synthetic_tiny
run: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(PY) -m habitat_fih.run $(RUN_CFG)
	OPENBLAS_NUM_THREADS=1 $(PY) -m habitat_fih.run $(RUN_CFG) habitat_baselines.evaluate=True \
		habitat_baselines.eval_ckpt_path_dir=data/fih/synthetic_tiny/checkpoints/ckpt.1.pth \
		habitat_baselines.test_episode_count=5
	cat data/fih/synthetic_tiny/eval/stats_ckpt_1_val_seen.json

oracle: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(PY) -m habitat_fih.run_oracle

test: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(PY) -m pytest -q

# FIHSim-v0 and FIH-VLN-v0 against the REAL habitat-sim 0.2.2 in a Debian 13 chroot (needs root;
# builds the chroot on first use, ~12.5 min): tests_habitat_sim/, parity figures in
# outputs/parity/figures.json. HSIM_ROOT / HSIM_SHARED move the chroot / the kit that builds it
# (default: ../shared/habitat-sim next to the checkout, else the workplace's /work/shared one).
HSIM_ROOT ?= /tmp/fih-hsim
HSIM_SHARED ?= $(or $(firstword $(wildcard ../shared/habitat-sim /work/shared/habitat-sim)),../shared/habitat-sim)
test-habitat-sim:
	bash tests_habitat_sim/run.sh $(HSIM_ROOT) $(HSIM_SHARED)

# GPU-only checks (a lent GPU; not in CI, which has none): tests_gpu/
test-gpu: $(STAMP)
	$(PY) -m pytest -q tests_gpu

data: $(STAMP)
	$(PY) -m habitat_fih.datasets.generate --out data

bench: $(STAMP)
	$(PY) benchmarks/bench_sim.py

lint: $(STAMP)
	$(VENV)/bin/ruff check habitat_fih tests tests_habitat_sim benchmarks _habitat_fih_autocompat.py setup.py
