# poptune: `make demo` (search the built-in data end to end) and `make test` (the suite CI runs).
# Each target creates .venv on first use and installs with the tested pins in constraints.txt.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The whole job on the built-in synthetic data: search, retrain the winner, baselines, export.
demo: $(STAMP)
	$(BIN)/poptune run --name demo --force --num-samples 16 --max-epochs 10

lint: $(STAMP)
	$(BIN)/ruff check poptune tests benchmarks localray
	$(BIN)/ruff format --check poptune tests benchmarks localray

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache runs
