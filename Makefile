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

test: lint typecheck
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build dist src/*.egg-info

# `make bench`: not part of `make test`. Measures yupnope against its baselines with wrk (installed
# with apt-get when missing and we are root) and writes docs/benchmarks.md and its chart.
.PHONY: bench

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $@ $(VENV)/.installed

bench: $(VENV)/.installed-bench
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "make bench: installing wrk with apt-get"; \
	    apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null; \
	  else \
	    echo "make bench: wrk is missing; install it with: sudo apt-get install wrk" >&2; exit 1; \
	  fi; }
	$(BIN)/python bench/run.py $(BENCH_ARGS)
