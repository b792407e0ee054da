# Set-up is part of every target: a fresh machine needs only Python 3.11 and make.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run test test-slow perf

$(BIN)/bench: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

setup: $(BIN)/bench

# The main job on its embedded default: the zero policy on all ten LIBERO-Long tasks.
run: setup
	$(BIN)/bench run --suite libero_long --policy zero --episodes 1

test: setup
	$(BIN)/python -m pytest

test-slow: setup
	$(BIN)/python -m pytest -m slow

perf: setup
	$(BIN)/bench perf eval --suite libero_spatial --tasks 0,1 --episodes 2 --out results/perf/eval.json
