# userloop — the two set-up commands are `make demo` and `make test`.
# Python packages come from the locks in lock/ (pinned, with hashes); pyproject.toml keeps the supported ranges.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP_VERSION := 26.3
UV_VERSION := 0.13.8
TOOLS := .venv-tools
LATEST := .venv-latest
WORKSPACE ?= demo-workspace
USERS ?= 100000
DAYS ?= 180
HOST ?= 127.0.0.1
PORT ?= 8000
# The suite on two processes (pytest-xdist), each test module (or folder: tests/xdist_units.py) whole on one of
# them; PYTEST_ARGS= runs it in one process.
PYTEST_ARGS ?= -n 2 --dist loadfile

.PHONY: demo test test-deep test-latest lint typecheck bench clean install install-dev lock check-lock console \
	console-test browsers

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==$(PIP_VERSION)

$(VENV)/.installed: $(BIN)/python lock/runtime.txt pyproject.toml
	$(BIN)/pip install --quiet --require-hashes --no-deps -r lock/runtime.txt
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/python -m userloop.query.warm
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed lock/dev.txt
	$(BIN)/pip install --quiet --require-hashes --no-deps -r lock/dev.txt
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed-dev lock/bench.txt
	$(BIN)/pip install --quiet --require-hashes --no-deps -r lock/bench.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# The console (web/): npm packages from web/package-lock.json, the typed client generated from the committed
# OpenAPI document, a production build in web/dist that `userloop serve` serves at /.
WEB_SOURCES := $(shell find web/src -type f 2>/dev/null) web/index.html web/vite.config.ts web/tsconfig.json

web/node_modules/.installed: web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

web/dist/index.html: web/node_modules/.installed $(WEB_SOURCES)
	cd web && npm run --silent gen:api && npm run --silent build

console: web/dist/index.html

# The console's unit tests (Vitest, in jsdom).
console-test: web/node_modules/.installed
	cd web && npx vitest run

# Debian's Chromium for the browser tests (Playwright drives it; its own downloaded browsers are never used), and a
# Chinese font so that the zh-CN screenshots show characters, not boxes.
BROWSER_PACKAGES := chromium fonts-wqy-zenhei
browsers:
	@command -v chromium >/dev/null && dpkg -s fonts-wqy-zenhei >/dev/null 2>&1 || \
		{ apt-get install -y -q $(BROWSER_PACKAGES) >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && apt-get install -y -q $(BROWSER_PACKAGES) >/dev/null; }; }
	@command -v chromium >/dev/null || { echo "Chromium could not be installed (apt-get install chromium)"; exit 1; }

demo: install console
	$(BIN)/userloop demo -w $(WORKSPACE) --users $(USERS) --days $(DAYS) --host $(HOST) --port $(PORT) --force

test: install-dev check-lock browsers console console-test
	$(BIN)/ruff check src tests bench lock
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The random, longer Hypothesis profile (ten times the examples, new ones each run).
test-deep: install-dev browsers console
	USERLOOP_HYPOTHESIS_PROFILE=deep $(BIN)/python -m pytest $(PYTEST_ARGS)

# The suite against the newest releases the ranges in pyproject.toml allow: drift seen on purpose.
test-latest:
	$(PY) -m venv $(LATEST)
	$(LATEST)/bin/pip install --quiet --upgrade pip
	$(LATEST)/bin/pip install --quiet --upgrade -e '.[dev]'
	$(LATEST)/bin/python -m pytest $(PYTEST_ARGS)

# What is installed in .venv equals the lock (every locked package at its pinned version, nothing else).
check-lock: install-dev
	$(BIN)/python lock/check.py $(if $(wildcard $(VENV)/.installed-bench),lock/bench.txt,lock/dev.txt)

$(TOOLS)/bin/uv:
	$(PY) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

# Re-resolve the locks (keeping current pins that still fit; UPGRADE=1 takes the newest releases).
# bench ⊇ dev ⊇ runtime, each constrained by the larger one so shared packages have one version.
UV_COMPILE = $(TOOLS)/bin/uv pip compile pyproject.toml --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	--generate-hashes --no-header --quiet $(if $(UPGRADE),--upgrade)
lock: $(TOOLS)/bin/uv
	$(UV_COMPILE) --extra dev --extra bench -o lock/bench.txt
	$(UV_COMPILE) --extra dev -c lock/bench.txt -o lock/dev.txt
	$(UV_COMPILE) -c lock/dev.txt -o lock/runtime.txt

lint: install-dev
	$(BIN)/ruff check src tests bench lock
	$(BIN)/ruff format --check src tests bench lock

typecheck: install-dev
	$(BIN)/mypy

# The collector's load generator is Debian's wrk (C); without it the bench falls back to a slower Python one.
bench: $(VENV)/.installed-bench
	@command -v wrk >/dev/null || { command -v apt-get >/dev/null && apt-get install -y -q wrk >/dev/null; } || \
		echo "wrk not installed: the collector bench uses its Python load generator (a lower ceiling)"
	$(BIN)/python -m bench all

clean:
	rm -rf $(VENV) $(LATEST) $(TOOLS) $(WORKSPACE) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info \
		web/node_modules web/dist web/test-artifacts
