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

# The tests that compare numbers, run again under other MKL and ATen code paths: a promise that
# holds only on this CPU's kernels fails here, not on a user's machine. MKL_CBWR=AVX2 gives the
# row-count-dependent matmul kernels that AMD CPUs get; where MKL is absent these change nothing.
NUMERIC_TESTS := tests/test_determinism.py tests/test_recipe.py tests/test_worker_memory.py \
                 tests/test_bundle.py tests/test_fit.py tests/test_models.py
KERNEL_PATHS  := MKL_CBWR=COMPATIBLE MKL_CBWR=AVX2 ATEN_CPU_CAPABILITY=default

test: lint
	$(BIN)/pytest
	@for path in $(KERNEL_PATHS); do \
	  echo "== the numeric tests again with $$path"; \
	  env $$path $(BIN)/pytest -q -o 'addopts=-ra --strict-markers' -m "not ray and not slow" $(NUMERIC_TESTS) || exit 1; \
	done

# The benchmarks also need the quality benchmark's anchors (the `bench` extra: LightGBM, FLAML,
# pytabkit); `make test` and a user's install never do.
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache runs
