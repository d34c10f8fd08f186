# Quick start (README): `make run` sets up and runs the main job, `make test` sets up and runs
# the tests. Both create the virtual environment .venv on first use (Python 3.11).
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test data bench lint

$(STAMP): setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

run: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(PY) -m habitat_fih.run_oracle

test: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(PY) -m pytest -q

data: $(STAMP)
	$(PY) -m habitat_fih.datasets.generate --out data

bench: $(STAMP)
	$(PY) benchmarks/bench_sim.py

lint: $(STAMP)
	$(VENV)/bin/ruff check habitat_fih tests benchmarks
