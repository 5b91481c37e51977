# Nordflow: `make demo` and `make test` are the two set-up commands (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
UV := $(PYTHON) -m uv
RUN := $(UV) run --frozen

.PHONY: help setup demo test lint generate up down status bench clean

help:
	@echo "make demo | test | up | status | down | lint | generate | bench | clean"

# Installs uv (PyPI) when missing, the locked Python environment, and kustomize (Go proxy).
setup:
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet 'uv>=0.5,<0.20'
	@$(UV) sync --frozen --quiet
	@bash deploy/k8s/install-kustomize.sh

demo: setup
	@$(RUN) nordflow-local up
	@$(RUN) python -m nordflow_local.demo

test: setup lint
	@$(RUN) pytest

lint: setup
	@$(UV) lock --check --quiet
	@$(RUN) ruff check .
	@$(RUN) ruff format --check .
	@$(RUN) mypy
	@$(RUN) python -m nordflow_schemas.export --check

generate: setup
	@$(RUN) python -m nordflow_schemas.export

up: setup
	@$(RUN) nordflow-local up

down:
	@$(RUN) nordflow-local down

status:
	@$(RUN) nordflow-local status

bench: setup
	@$(RUN) python bench/documents.py
	@$(RUN) python bench/pipeline.py

clean: down
	rm -rf .local
