# Two commands from a fresh clone: `make run` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint typecheck clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	@echo "yupnope: serving on http://$(HOST):$(PORT)/ (SQLite at instance/yupnope.db)"
	@echo "yupnope: create the first user with:  $(BIN)/yupnope users add NAME"
	$(BIN)/yupnope serve --host $(HOST) --port $(PORT)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

RELYING_PARTY := tests/relying_party

# openid-client, the Node relying party of tests/test_oidc_relying_parties.py, from its lock
# file. Without npm the rule says so and those tests skip (YUPNOPE_REQUIRE_NODE=1 fails them).
$(RELYING_PARTY)/node_modules/.package-lock.json: $(RELYING_PARTY)/package.json $(RELYING_PARTY)/package-lock.json
	@if command -v npm >/dev/null; then \
	  cd $(RELYING_PARTY) && npm ci --no-audit --no-fund; \
	else \
	  echo "make test: npm is missing; the openid-client tests will skip (install Node.js 20 or later)" >&2; \
	fi

test: lint typecheck $(RELYING_PARTY)/node_modules/.package-lock.json
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build dist src/*.egg-info $(RELYING_PARTY)/node_modules

# `make bench`: not part of `make test`. Measures yupnope against its baselines with wrk, and B9
# through nginx (both installed with apt-get when missing and we are root), and writes
# docs/benchmarks.md and its chart.
.PHONY: bench

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $@ $(VENV)/.installed

# nginx is in /usr/sbin, which a user's PATH may not reach; bench/run.py looks there too.
bench: $(VENV)/.installed-bench
	@export PATH="$$PATH:/usr/sbin:/usr/local/sbin:/sbin"; \
	for program in wrk nginx; do \
	  command -v $$program >/dev/null && continue; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "make bench: installing $$program with apt-get"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq --no-install-recommends $$program; } >/dev/null || exit 1; \
	  else \
	    echo "make bench: $$program is missing; install it with: sudo apt-get install $$program" >&2; \
	    exit 1; \
	  fi; \
	done
	$(BIN)/python bench/run.py $(BENCH_ARGS)
