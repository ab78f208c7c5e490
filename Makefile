# Two-command start: `make demo` and `make test`. Both create/refresh .venv first.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
# The CPU wheel on this machine's disk; elsewhere any recent torch works (pip install -e .).
TORCH   ?= torch==2.13.0
STAMP   := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev,ray]"
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)  # browser tests
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/groklab tour --quick

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q -n 2 --durations=15  # two workers, one torch thread each (tests/conftest.py)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
