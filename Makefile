# Two commands on a fresh machine: `make run` (install + whole pipeline) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)
export TF_CPP_MIN_LOG_LEVEL := 3
export TF_ENABLE_ONEDNN_OPTS := 0

.PHONY: install run test test-fast lint ui server bench bench-functions bench-space bench-search bench-nas bench-compress bench-scale clean study

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	dvc repro
	@echo
	@echo "Results: reports/ (metrics, CSV, PNG), models/ (Keras files); compare with 'dvc exp show'."
	@echo "MLflow UI: make ui   (or: $(BIN)/$$(python -c 'from leanml import params, tracking; print(tracking.ui_command(params.load().base.tracking))'))"

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

ui: $(STAMP)
	$(BIN)/$$(python -c 'from leanml import params, tracking; print(tracking.ui_command(params.load().base.tracking))')

# A real MLflow tracking server for many writers (parallel workers, `dvc queue start --jobs N`):
# one process owns the project's sqlite store, artifacts go under mlartifacts/, loopback only.
# Then: export MLFLOW_TRACKING_URI=http://127.0.0.1:$(SERVER_PORT) before dvc repro / dvc exp run.
SERVER_PORT ?= 5000
server: $(STAMP)
	$(BIN)/mlflow server --backend-store-uri sqlite:///mlflow.db --artifacts-destination mlartifacts --host 127.0.0.1 --port $(SERVER_PORT) --workers 1

# Multi-seed study: the whole pipeline once per seed (dvc exp run --queue), then mean ± std and
# paired Wilcoxon tests in reports/study/. `make study SEEDS=5 JOBS=1`; re-aggregate: STUDY_ARGS=--aggregate-only
SEEDS ?= 5
JOBS ?= 1
study: $(STAMP)
	$(BIN)/python stages/study.py --seeds $(SEEDS) --jobs $(JOBS) $(STUDY_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/foundation.py

# The search algorithms alone on Branin, Hartmann-6, Ackley-5 and a mixed function (no Keras, no
# data): simple regret over 40 evaluations × 20 seeds; table in bench/out/functions.md. BO's GP
# refits take nearly all of its time (23 min on the shared 2-core machine; GA/PSO/random: seconds).
bench-functions: $(STAMP)
	$(BIN)/python bench/functions.py --budget 40 --seeds 20 --jobs 2

# The slower family benchmarks (figures in bench/README.md); they need `dvc repro prepare` (and
# `train` for compress) first.
# Share of random configurations of the default space near chance at the search fidelity (~3 min).
bench-space: $(STAMP)
	$(BIN)/python bench/space_health.py --n 40

bench-search: $(STAMP)
	$(BIN)/python bench/search.py --seeds 5 --epoch-budget 60

bench-nas: $(STAMP)
	$(BIN)/python bench/nas.py --budget 10 --seeds 5 --epochs 6

bench-compress: $(STAMP)
	$(BIN)/python bench/compress.py mlp cnn

# Trial throughput serially and on 1 and 2 Dask workers, and the identical-results check.
bench-scale: $(STAMP)
	$(BIN)/python bench/scale.py --algo random --budget 16 --epochs 6

clean:
	rm -rf data models reports mlflow.db mlartifacts
