# Pickwise — the README's commands. Each installs what it needs first, in two parts with one stamp each:
# the runtime (`make run`, eval, bench, report) and, on top, the test tools (`make test`, lint: the dev
# extras, Chromium, promtool). `make test` after `make run` only adds the test part.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.install-runtime
TEST_STAMP := $(VENV)/.install-test
PACKAGES := libs/common libs/client services/gateway services/retriever services/reranker services/generator \
            services/session services/event-consumer data-pipeline
PYPROJECTS := pyproject.toml $(addsuffix /pyproject.toml,$(PACKAGES))
QUERIES ?= data/eval/flipkart_dev.jsonl
TARGET ?= retriever
MODE ?= bm25,dense,hybrid
PYTEST_ARGS ?=
BENCH_ARGS ?=
REPORTS ?= .pickwise/reports
# where pip is not set up for torch's CPU build: make run TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
TORCH_INDEX_URL ?=
# the model registry's server (and UI) that `make run` starts (decision 1002)
MLFLOW_URL ?= http://127.0.0.1:$(or $(PICKWISE_MLFLOW_PORT),5000)

.PHONY: mlflow-ui
mlflow-ui: install ## open the model registry's UI: the MLflow server of the running stack [MLFLOW_URL=http://127.0.0.1:5000]
	@$(BIN)/python -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + '/health', timeout=3); print('MLflow UI (models: ' + sys.argv[1] + '/#/models):', sys.argv[1])" $(MLFLOW_URL) 2>/dev/null \
		|| { echo "no MLflow server at $(MLFLOW_URL): start the stack with make run (or set MLFLOW_URL)" >&2; exit 1; }
	@$(BIN)/python -m webbrowser -t $(MLFLOW_URL) >/dev/null 2>&1 || true

.PHONY: install install-test run infra test test-unit eval eval-cf simulate train-ranker-clicks bench bench-open-loop profile bench-click bench-cf-feed report lint fmt clean distclean manifests

install: $(RUNTIME_STAMP) ## the runtime only: what run, eval, bench and report need

install-test: $(TEST_STAMP) ## the runtime plus test tools: dev extras, Chromium + chromedriver, promtool

$(RUNTIME_STAMP): constraints.txt $(PYPROJECTS) scripts/install.sh
	PYTHON=$(PYTHON) VENV=$(VENV) TORCH_INDEX_URL=$(TORCH_INDEX_URL) bash scripts/install.sh runtime $(PACKAGES)
	@touch $(RUNTIME_STAMP)

$(TEST_STAMP): $(RUNTIME_STAMP)
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/install.sh test $(PACKAGES)
	@touch $(TEST_STAMP)

run: install ## infrastructure + catalog + six services, foreground; Ctrl-C stops everything
	$(BIN)/pickwise run

infra: install ## only the embedded broker, Redis, Postgres, Milvus Lite and MLflow
	$(BIN)/pickwise infra

test: install-test ## the whole suite: unit, integration, e2e, browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: install-test
	$(BIN)/python -m pytest -m unit $(PYTEST_ARGS)

eval: install ## make eval QUERIES=<jsonl> [TARGET=retriever|gateway] [MODE=hybrid]; JSON in $(REPORTS)/eval-<target>.json
	$(BIN)/pickwise-pipeline evaluate --queries $(QUERIES) --target $(TARGET) --modes $(MODE) \
		--out $(REPORTS)/eval-$(TARGET).json

# make eval-cf: offline (models straight from data/retail) unless TARGET=gateway (the running stack's public API)
CF_TARGET = $(if $(filter gateway,$(TARGET)),gateway,offline)
eval-cf: install ## CF feed vs baselines on the retail temporal split [TARGET=gateway]; JSON in $(REPORTS)/eval-cf-<target>.json
	$(BIN)/pickwise-pipeline evaluate-cf --target $(CF_TARGET) --out $(REPORTS)/eval-cf-$(CF_TARGET).json

SIM_SESSIONS ?= 200
SIM_RATE ?= 20
SIM_SEED ?= 7
simulate: install ## simulated shoppers against the running stack [SIM_SESSIONS=200 SIM_RATE=20 SIM_SEED=7]; truth + summary in $(REPORTS)/sim
	$(BIN)/pickwise-pipeline simulate --sessions $(SIM_SESSIONS) --rate $(SIM_RATE) --seed $(SIM_SEED) --out $(REPORTS)/sim

train-ranker-clicks: install ## the reranker's model learned from the event log's clicks (IPW), scored against the last simulation's truth
	$(BIN)/pickwise-pipeline train-ranker --from-events --truth $(REPORTS)/sim/truth.jsonl

# make bench: distinct shopper queries (caches cold) unless MODE=cache-hit; QUERIES=<file> only when given here
BENCH_QUERIES = $(if $(filter command line environment,$(origin QUERIES)),--queries $(QUERIES),)
BENCH_MODE = $(if $(filter distinct cache-hit,$(MODE)),--mode $(MODE),)
bench: install ## load test of the running stack, distinct queries [MODE=cache-hit] [QUERIES=file] [BENCH_ARGS=...]; JSON in $(REPORTS)/bench.json
	$(BIN)/pickwise-pipeline bench --out $(REPORTS)/bench.json $(BENCH_MODE) $(BENCH_QUERIES) $(BENCH_ARGS)

bench-open-loop: install ## fixed arrival rate (40 req/s for 60 s), distinct queries; JSON in $(REPORTS)/bench-open-loop.json
	$(BIN)/python -m pickwise_pipeline.bench_open_loop --out $(REPORTS)/bench-open-loop.json $(BENCH_QUERIES) $(BENCH_ARGS)

PROFILE_S ?= 30
profile: install-test ## py-spy flame graphs of each service under make bench (search, c=10): docs/img/flame-<service>.svg
	$(BIN)/pickwise-pipeline bench --out $(REPORTS)/bench-profile.json --endpoints search --concurrency 10 \
		--requests 5000 --max-seconds $(PROFILE_S) --profile-s $(PROFILE_S) $(BENCH_QUERIES) $(BENCH_ARGS)

bench-click: install ## click -> visible delay over the running stack; JSON in $(REPORTS)/bench-click.json
	$(BIN)/pickwise-pipeline bench-click --out $(REPORTS)/bench-click.json $(BENCH_ARGS)

bench-cf-feed: install ## purchase -> feed changed over the running stack (retail CF model trained); $(REPORTS)/bench-cf-feed.json
	$(BIN)/pickwise-pipeline bench-cf-feed --out $(REPORTS)/bench-cf-feed.json $(BENCH_ARGS)

report: install ## PNG charts in docs/img/ from the last make eval / make bench JSON
	$(BIN)/pickwise-pipeline report --reports $(REPORTS) --out docs/img

manifests: install-test ## re-render deploy/k8s/manifests/{local,gke} from the Helm chart (commit the result)
	$(BIN)/python deploy/k8s/render.py

lint: install-test
	$(BIN)/ruff check libs services data-pipeline tests

fmt: install-test
	$(BIN)/ruff format libs services data-pipeline tests

SOAK_S ?= 600
SOAK_RATE ?= 10
.PHONY: soak
soak: install ## steady mixed load on a stack of its own for SOAK_S (600) s at SOAK_RATE (10) req/s: RSS growth per process, errors (not in CI)
	$(BIN)/python tests/chaos/soak.py --duration-s $(SOAK_S) --rate $(SOAK_RATE) --out .pickwise/reports/soak.json

clean:
	rm -rf .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) .pickwise
