# Hybrid data platform: `make demo` runs it, `make test` proves it. `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# uv is the only tool bootstrapped from outside the project: the one on PATH, or a pinned copy in the cache.
UV_VERSION := 0.13.8
TOOLS_DIR := $(HOME)/.cache/hybrid-platform/tools
UV := $(or $(shell command -v uv 2>/dev/null),$(TOOLS_DIR)/bin/uv)
# Which installed CPython to use (3.11 or 3.12); uv never downloads one here.
PYTHON_VERSION ?= 3.11
export UV_PYTHON_DOWNLOADS := never
VENV := .venv
VENV_FLINK := .venv-flink
HDP := $(VENV)/bin/hdp
PYTEST_ARGS ?=
# [template:reference]
BENCH_PROFILE ?= quick
BENCH_ARGS ?=
# [/template:reference]
# The browser the Airflow UI test drives (through Playwright): Debian's chromium, never Playwright's download.
export HDP_CHROMIUM ?= /usr/bin/chromium

.PHONY: help setup setup-browser demo up down status test test-unit test-integration chaos lint format typecheck security clean
.PHONY: infra-check  # [template:infra]
.PHONY: bench  # [template:reference]

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(TOOLS_DIR)/bin/uv:
	@command -v python3 >/dev/null || { echo "python3 not found: install Python 3.11 or 3.12"; exit 1; }
	@grep -q '^uv==$(UV_VERSION) ' tools/uv-requirements.txt || { echo "tools/uv-requirements.txt does not pin uv $(UV_VERSION)"; exit 1; }
	python3 -m venv $(TOOLS_DIR) && $(TOOLS_DIR)/bin/pip install --quiet --require-hashes -r tools/uv-requirements.txt

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --python $(PYTHON_VERSION)
	@touch $@

# [template:streaming]
$(VENV_FLINK)/.synced: pyproject.toml uv.lock | $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV_FLINK) $(UV) sync --locked --python $(PYTHON_VERSION) --no-default-groups --group flink --group dev
	@touch $@
# [/template:streaming]

# [template:streaming]
setup: $(VENV)/.synced $(VENV_FLINK)/.synced ## Install uv, both Python environments and the pinned jars (idempotent)
# [/template:streaming]
# [template:!streaming] setup: $(VENV)/.synced ## Install uv, the Python environment and the pinned jars (idempotent)
	@$(HDP) jars

setup-browser: ## Chromium for the Airflow UI test: Debian's package (apt-get), unless HDP_CHROMIUM already exists
	@if [ -x "$(HDP_CHROMIUM)" ]; then exit 0; fi; \
	if command -v apt-get >/dev/null 2>&1; then \
		sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends chromium; \
	else \
		echo "no chromium at $(HDP_CHROMIUM): install Chromium or Chrome and set HDP_CHROMIUM to its binary"; exit 1; \
	fi

demo: setup ## Start the platform and run the end-to-end scenario; leaves it running (`make down`)
	$(HDP) demo

up: setup ## Start Kafka, Flink, the Iceberg catalog and Airflow (harmless when already up)
	$(HDP) up

down: ## Stop everything `make up` started, and nothing else
	@if [ -x $(HDP) ]; then $(HDP) down; fi

status: ## Show what runs where: URLs, PIDs, health, memory
	$(HDP) status

# [template:reference]
bench: setup ## Benchmarks on a private runtime: BENCH_PROFILE=quick (~25 min on 2 cores) or full; writes bench/results/<profile>/
	$(VENV)/bin/python -m bench --profile $(BENCH_PROFILE) $(BENCH_ARGS)
# [/template:reference]

lint: $(VENV)/.synced ## ruff format check + ruff check (with Airflow's AIR rules)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

format: $(VENV)/.synced ## Apply ruff formatting and safe fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: $(VENV)/.synced ## mypy (strict) on the shared package
	$(VENV)/bin/mypy

test-unit: setup ## Unit tests only (no services)
	$(VENV)/bin/pytest -m "not integration" $(PYTEST_ARGS)

test-integration: setup setup-browser ## Integration tests against real services the tests start and stop
	$(VENV)/bin/pytest -m "integration and not chaos" $(PYTEST_ARGS)

# [template:infra]
infra-check: $(VENV)/.synced ## Validate infra/ offline (Compose and k8s schemas incl. CRDs, version matrix, ports, secrets); part of `make test`
	$(VENV)/bin/pytest tests/unit/test_infra.py $(PYTEST_ARGS)
# [/template:infra]

security: $(VENV)/.synced ## Secret scan of every tracked file (detect-secrets); vulnerability audit of uv.lock (both environments) and of the JVM classpath (offline)
	git ls-files -z | xargs -0 $(VENV)/bin/detect-secrets-hook --baseline .secrets.baseline
	UV=$(UV) $(VENV)/bin/python tools/audit_dependencies.py
	$(VENV)/bin/python tools/audit_jvm.py

test: setup setup-browser lint typecheck ## Hygiene, unit and integration tests (CI runs this, then `make chaos`)
	$(VENV)/bin/pytest -m "not chaos" $(PYTEST_ARGS)

chaos: setup ## Fault tests with real processes: kill -9 TaskManager/JobManager/Kafka/Spark, overload, bad input; reconciled
	$(VENV)/bin/pytest -m chaos $(PYTEST_ARGS)

clean: ## Delete all local data (.platform) and both environments, after asking (CONFIRM=yes: no question); jars kept
	@if [ "$(CONFIRM)" != "yes" ]; then \
		read -r -p "Delete .platform (every table, topic and checkpoint of the local platform) and both environments? [y/N] " answer || answer=; \
		[ "$$answer" = y ] || [ "$$answer" = yes ] || { echo "nothing deleted (make clean CONFIRM=yes deletes without asking)"; exit 1; }; \
	fi
	$(MAKE) down
	rm -rf .platform $(VENV) $(VENV_FLINK) .pytest_cache .ruff_cache .mypy_cache
