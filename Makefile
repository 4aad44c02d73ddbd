# carnn: `make help` lists the targets. Every target sets up .venv itself when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(abspath $(VENV))/bin
PORT   ?= 5001
TEAM_DIR ?= .team
MODEL  ?= models:/carnn@production
export PATH := $(BIN):$(PATH)
export MLFLOW_TRACKING_URI ?= sqlite:///mlflow.db

.DEFAULT_GOAL := help
.PHONY: help install dev train promote rollback stages evaluate sweep test test-fast bench lint format \
        serve mlflow-serve score docker-context ui clean \
        team-server team-server-status team-server-stop

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[train]'
	touch $@

# The tests run the Dockerfile's `pip install` steps offline: from a wheelhouse of the model's
# pins and of what installing the carnn package for serving needs (its pins, setuptools).
$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[train,team,dev,spark]'
	$(BIN)/python -m carnn_pyfunc.versions > $(VENV)/model-requirements.txt
	$(BIN)/python -m carnn_pyfunc.versions --serving > $(VENV)/serve-requirements.txt
	$(BIN)/python -m pip download --quiet --dest $(VENV)/wheelhouse \
		-r $(VENV)/model-requirements.txt -r $(VENV)/serve-requirements.txt
	touch $@

install: $(VENV)/.installed ## create .venv with the pinned runtime dependencies

dev: $(VENV)/.installed-dev ## .venv plus test and lint tools

train: install ## train, track, register, and promote the new version as far as it qualifies
	$(BIN)/python train.py --promote $(ARGS)

promote: install ## promote a version (ARGS="--version 3 --to production"; see carnn promote -h)
	$(BIN)/carnn promote $(ARGS)

rollback: install ## swap production and previous-production (ARGS='--reason "..."')
	$(BIN)/carnn rollback $(ARGS)

stages: install ## list the versions with their stage and test MAE
	$(BIN)/carnn stages $(ARGS)

evaluate: install ## 5-fold x 3 CV of the network vs Ridge, random forest, gradient boosting
	$(BIN)/python -m carnn_pyfunc.cli evaluate $(ARGS)

sweep: install ## Optuna hyperparameter search; registers the best as a new version
	$(BIN)/python -m carnn_pyfunc.cli sweep $(ARGS)

test: dev ## run the whole test suite (includes real served-over-HTTP tests)
	$(BIN)/python -m pytest $(ARGS)

test-fast: dev ## the fast tier: no process started, nothing trained beyond a tiny fixture (~1 min)
	$(BIN)/python -m pytest -m "not slow" $(ARGS)

bench: dev ## benchmark carnn vs naive vs floor, served both ways; writes bench/results.json (~15 min)
	@command -v wrk >/dev/null || { echo "installing wrk (the HTTP load generator)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk >/dev/null \
	  || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
	       apt-get install -y -q --no-install-recommends wrk >/dev/null; }; }
	$(BIN)/python bench/bench.py $(ARGS)

lint: dev ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile

format: dev ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

serve: install ## carnn serve MODEL (default models:/carnn@production) on 127.0.0.1:PORT
	$(BIN)/carnn serve --model-uri "$(MODEL)" --host 127.0.0.1 --port $(PORT) $(ARGS)

score: install ## score a file: make score IN=cars.parquet OUT=scored.parquet [ARGS="--engine spark"]
	$(BIN)/carnn score "$(IN)" "$(OUT)" --model-uri "$(MODEL)" $(ARGS)

mlflow-serve: install ## the same model under MLflow's own scoring server
	$(BIN)/mlflow models serve -m "$(MODEL)" --env-manager local -h 127.0.0.1 -p $(PORT)

docker-context: install ## write build/model (the production model) for `docker build -t carnn .`
	$(BIN)/carnn export --model-uri "$(MODEL)"

$(VENV)/.installed-team: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[train,team]'
	touch $@

team-server: $(VENV)/.installed-team ## PostgreSQL + MLflow's tracking server (basic-auth) under .team/ on 127.0.0.1:5000
	$(BIN)/python -m carnn_pyfunc.team start --dir "$(TEAM_DIR)" $(ARGS)

team-server-status: $(VENV)/.installed-team ## is the team tracking server running? (exit 3: stopped)
	$(BIN)/python -m carnn_pyfunc.team status --dir "$(TEAM_DIR)"

team-server-stop: $(VENV)/.installed-team ## stop the team tracking server, then its PostgreSQL
	$(BIN)/python -m carnn_pyfunc.team stop --dir "$(TEAM_DIR)"

ui: install ## the MLflow UI on 127.0.0.1:5000
	$(BIN)/mlflow ui --backend-store-uri "$(MLFLOW_TRACKING_URI)" -h 127.0.0.1 -p 5000

clean: ## remove the virtualenv, caches and build/ (keeps mlflow.db and mlruns/)
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info build
