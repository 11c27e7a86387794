# Self-bootstrapping: every target creates .venv and installs what it needs first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The local BigQuery emulator for the warehouse tests, in its own venv: it pins an older sqlglot.
BQEMU       := .venv-bqemu
BQEMU_STAMP := $(BQEMU)/.installed
BQEMU_PINS  := bqemulator==1.4.0 numpy==2.4.6

.PHONY: install demo test bench chaos clean

install: $(STAMP)

# Reinstall only when the dependency pins change (idempotent and quick otherwise).
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	@touch $(STAMP)

# bqemulator's DuckDB UDFs need numpy at start-up but declare it only as an extra.
$(BQEMU_STAMP): Makefile
	@test -x $(BQEMU)/bin/python || $(PYTHON) -m venv $(BQEMU)
	$(BQEMU)/bin/python -m pip install --quiet $(BQEMU_PINS)
	@touch $(BQEMU_STAMP)

# The whole bundled season through every phase (raw, reconcile against ESPN, analytics,
# precompute), each phase gated by its validation, then the points model: trained, gated
# against the baselines, its test dates predicted and graded.
demo: install
	$(BIN)/hoopflow backfill --phases raw,reconcile,analytics,precompute,ml

# Not a test: measures a full-season backfill on fresh homes and prints JSON figures.
bench: install
	$(BIN)/python -m hoopflow.bench --growth

# Not a test: SIGKILLs a month's backfill at seeded moments, resumes it and compares every table
# with a clean run; prints figures (make chaos CHAOS_ARGS="--trials 3 --faults 0.2").
chaos: install
	$(BIN)/python -m hoopflow.chaos $(CHAOS_ARGS)

test: install $(BQEMU_STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .hoopflow
