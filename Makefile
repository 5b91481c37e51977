# Nordflow: `make demo` and `make test` are the two set-up commands (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
UV := $(PYTHON) -m uv
RUN := $(UV) run --frozen
# apt-get needs root: CI runs as root; elsewhere sudo asks.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
OPENAPI := docs/api/control-panel.openapi.json

.PHONY: help setup demo test lint generate up down status bench bench-quick chaos clean

help:
	@echo "make demo | test | up | status | down | lint | generate | bench | bench-quick | chaos | clean"

# Installs uv (PyPI) when missing, the locked Python environment, kustomize (Go proxy), and
# Debian's Chromium for the control panel's browser tests (never a browser download).
setup:
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet 'uv>=0.5,<0.20'
	@$(UV) sync --frozen --quiet
	@bash deploy/k8s/install-kustomize.sh
	@test -x /usr/bin/chromium || { echo "installing Debian's chromium and chromium-driver"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

demo: setup
	@$(RUN) nordflow-local up
	@$(RUN) python -m nordflow_local.demo

# The benchmark's quick mode runs first, so that it cannot rot (it asserts only that it
# completes and that every partner sandbox received what was sent); then the tests, as two
# pytest sessions at once, each on a stack of its own (the nordflow_local plugin starts one
# per session): the end-to-end suites, whose services as processes mostly wait, and the
# rest. The end-to-end session's output is printed when both have ended.
E2E := tests/e2e tests/chaos
test: setup lint bench-quick
	@mkdir -p .local
	@$(RUN) pytest $(E2E) > .local/test-e2e.log 2>&1 & e2e=$$!; \
	$(RUN) pytest $(addprefix --ignore=,$(E2E)); rest=$$?; \
	wait $$e2e; ends=$$?; \
	echo "== end-to-end session ($(E2E)) =="; cat .local/test-e2e.log; \
	echo "== exit status: end-to-end $$ends, the rest $$rest =="; \
	test $$rest = 0 -a $$ends = 0

lint: setup
	@$(UV) lock --check --quiet
	@$(RUN) ruff check .
	@$(RUN) ruff format --check .
	@$(RUN) mypy
	@$(RUN) python -m nordflow_schemas.export --check
	@$(RUN) control-panel openapi --check $(OPENAPI)

generate: setup
	@$(RUN) python -m nordflow_schemas.export
	@$(RUN) control-panel openapi --write $(OPENAPI)

up: setup
	@$(RUN) nordflow-local up

down:
	@$(RUN) nordflow-local down

status:
	@$(RUN) nordflow-local status

# Prints numbers, asserts none (bench/README.md); its own stack in .local/bench.
bench: setup
	@$(RUN) python bench/documents.py
	@$(RUN) python bench/pipeline.py

# A few hundred invoices, its own stack in .local/bench-quick (removed afterwards). The run
# stops itself after 12 min (pipeline.py --quick's deadline); `timeout` is the last guard:
# SIGTERM (the bench stops its stack and exits), SIGKILL later. ~16 min at the very most.
bench-quick: setup
	@timeout -k 30 120 $(RUN) python bench/documents.py --documents 20
	@timeout -k 60 780 $(RUN) python bench/pipeline.py --quick

# The full fault run (a few hundred invoices, random crashes of services, the broker and the
# database; SEED=N replays one), the recovery times, and the three-broker cluster run in
# network namespaces (needs root). Each on a fresh stack of its own, stopped at the end;
# bounded by `timeout`; all three run, and the target fails if any of them did. The short
# run is part of `make test` (tests/chaos).
chaos: setup
	@mkdir -p .local
	@status=0; \
	timeout 1500 $(RUN) python -m nordflow_local.chaos run --profile full $(if $(SEED),--seed $(SEED)) --report .local/chaos-report.json || status=1; \
	timeout 900 $(RUN) python -m nordflow_local.chaos recovery || status=1; \
	timeout 1200 $(RUN) python -m nordflow_local.chaos cluster $(if $(SEED),--seed $(SEED)) || status=1; \
	exit $$status

clean: down
	rm -rf .local
