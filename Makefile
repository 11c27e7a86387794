# Self-bootstrapping: every target creates .venv and installs what it needs first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test clean

install: $(STAMP)

# Reinstall only when the dependency pins change (idempotent and quick otherwise).
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	@touch $(STAMP)

demo: install
	$(BIN)/hoopflow backfill --phases raw

test: install
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .hoopflow
