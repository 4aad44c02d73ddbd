# carnn: `make help` lists the targets. Every target sets up .venv itself when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(abspath $(VENV))/bin
PORT   ?= 5001
MODEL  ?= models:/carnn/latest
export PATH := $(BIN):$(PATH)
export MLFLOW_TRACKING_URI ?= sqlite:///mlflow.db

.DEFAULT_GOAL := help
.PHONY: help install dev train evaluate sweep test bench lint format serve ui clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed ## create .venv with the pinned runtime dependencies

dev: $(VENV)/.installed-dev ## .venv plus test and lint tools

train: install ## train, track and register a model version (sqlite:///mlflow.db)
	$(BIN)/python train.py $(ARGS)

evaluate: install ## 5-fold x 3 CV of the network vs Ridge, random forest, gradient boosting
	$(BIN)/python -m carnn_pyfunc.cli evaluate $(ARGS)

sweep: install ## Optuna hyperparameter search; registers the best as a new version
	$(BIN)/python -m carnn_pyfunc.cli sweep $(ARGS)

test: dev ## run the whole test suite (includes real served-over-HTTP tests)
	$(BIN)/python -m pytest $(ARGS)

bench: install ## benchmark carnn vs naive vs floor pyfuncs; writes bench/results.json (~3 min)
	$(BIN)/python bench/bench.py $(ARGS)

lint: dev ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: dev ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

serve: install ## serve MODEL (default the latest carnn version) on 127.0.0.1:PORT
	$(BIN)/mlflow models serve -m "$(MODEL)" --env-manager local -h 127.0.0.1 -p $(PORT)

ui: install ## the MLflow UI on 127.0.0.1:5000
	$(BIN)/mlflow ui --backend-store-uri "$(MLFLOW_TRACKING_URI)" -h 127.0.0.1 -p 5000

clean: ## remove the virtualenv and caches (keeps mlflow.db and mlruns/)
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
