# Pickwise — the README's commands. `make run` and `make test` install whatever is missing first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install-stamp
PACKAGES := libs/common libs/client services/gateway services/retriever services/reranker services/generator \
            services/session services/event-consumer data-pipeline
PYPROJECTS := pyproject.toml $(addsuffix /pyproject.toml,$(PACKAGES))
QUERIES ?= data/eval/flipkart_dev.jsonl
TARGET ?= retriever
MODE ?= bm25,dense,hybrid
PYTEST_ARGS ?=

.PHONY: install run infra test test-unit eval bench lint fmt clean distclean manifests

install: $(STAMP)

$(STAMP): constraints.txt $(PYPROJECTS) scripts/install.sh
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/install.sh $(PACKAGES)
	@touch $(STAMP)

run: install ## infrastructure + catalog + six services, foreground; Ctrl-C stops everything
	$(BIN)/pickwise run

infra: install ## only the embedded broker, Redis, Postgres and Milvus Lite
	$(BIN)/pickwise infra

test: install ## the whole suite: unit, integration, e2e, browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: install
	$(BIN)/python -m pytest -m unit $(PYTEST_ARGS)

eval: install ## make eval QUERIES=<jsonl> [TARGET=retriever|gateway] [MODE=hybrid]
	$(BIN)/pickwise-pipeline evaluate --queries $(QUERIES) --target $(TARGET) --modes $(MODE)

bench: install ## load test of the running stack on 127.0.0.1
	$(BIN)/pickwise-pipeline bench

manifests: install ## re-render deploy/k8s/manifests/{local,gke} from the Helm chart (commit the result)
	$(BIN)/python deploy/k8s/render.py

lint: install
	$(BIN)/ruff check libs services data-pipeline tests

fmt: install
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
