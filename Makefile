# The two README commands: `make train` (set up + main job) and `make test` (set up + tests).
# The virtual environment is created when missing and reinstalled when pyproject.toml or the
# lock file requirements.lock changes: lossd with every extra (`.[dev]` = train + integrations
# + dev tools), at the exact versions of the lock (pip -c).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: setup train test test-all lint bench gpu-check notebook results clean-outputs

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

## Main job: UNetFormer + Lossd on the embedded synthetic dataset (CPU, < 10 min).
train: setup
	$(BIN)/python scripts/train.py $(ARGS)

## Test suite (CPU, no network); GPU tests skip themselves; `integration` tests train inside
## segmentation_models_pytorch and torchgeo (installed by the lock's lossd[integrations]).
test: setup
	$(BIN)/python -m pytest -q $(ARGS)

## GPU check (issue 16): every GPU path measured in one run (< 8 min on one H100).
gpu-check: setup
	$(BIN)/python bench/gpu_check.py --out outputs/gpu_check $(ARGS)

## The executed analysis notebook (notebooks/analysis.ipynb, on the committed study records).
notebook: setup
	$(BIN)/python scripts/execute_notebook.py

## Committed evidence (results/): every committed table and figure from the committed run
## records, then the executed notebook. Regenerates byte for byte (tests/results).
results: setup
	$(BIN)/python scripts/make_tables.py --runs results/runs/synthetic_grid \
		--out results/tables/synthetic_grid
	$(BIN)/python scripts/make_tables.py --runs results/runs/synthetic_grid \
		results/runs/synthetic_lambda --out results/tables/synthetic_lambda
	$(BIN)/python scripts/make_tables.py --runs results/runs/synthetic_lambda_full \
		--out results/tables/synthetic_lambda_full --figures
	$(BIN)/python scripts/make_tables.py --runs results/runs/losses_full \
		--out results/tables/losses_full --figures
	$(BIN)/python scripts/execute_notebook.py

## Mutation testing of the core, not part of CI (docs/testing.md, "Mutation testing"): mutmut
## per module against its own tests, 150 mutants sampled per module, 900 s each; then the tables.
.PHONY: mutate
mutate: setup
	$(BIN)/python scripts/mutate.py $(ARGS)
	$(BIN)/python scripts/mutation_report.py

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check src tests scripts bench
	$(BIN)/mypy

clean-outputs:
	rm -rf outputs multirun
