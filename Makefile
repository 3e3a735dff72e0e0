# The two README commands: `make train` (set up + main job) and `make test` (set up + tests).
# The virtual environment is created when missing and rebuilt when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: setup train test test-all lint bench gpu-check notebook results clean-outputs

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

## Main job: UNetFormer + Lossd on the embedded synthetic dataset (CPU, < 10 min).
train: setup
	$(BIN)/python scripts/train.py $(ARGS)

## Test suite (CPU, no network); GPU tests skip themselves.
test: setup
	$(BIN)/python -m pytest -q $(ARGS)

## GPU check (issue 16): every GPU path measured in one run (< 8 min on one H100).
gpu-check: setup
	$(BIN)/python bench/gpu_check.py --out outputs/gpu_check $(ARGS)

## The executed analysis notebook (notebooks/analysis.ipynb, on the committed study records).
notebook: setup
	$(BIN)/python scripts/execute_notebook.py

## Committed evidence of the synthetic lambda study: tables, figures, then the notebook.
results: setup
	$(BIN)/python scripts/make_tables.py --runs results/runs/synthetic_lambda_full \
		--out results/tables/synthetic_lambda_full --figures
	$(BIN)/python scripts/execute_notebook.py

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check src tests scripts bench
	$(BIN)/mypy

clean-outputs:
	rm -rf outputs multirun
