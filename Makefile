# Set-up, the main job, the tests and the report. Every committed result is a study (bench/studies/catalog.py):
# `bench results --plan` lists them, `bench results NAME` rebuilds one, `bench results --check` recomputes them.
# Set-up is part of every target: a fresh machine needs only Python 3.11 and make.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run test test-slow test-ray test-gpu report results-check demos

$(BIN)/bench: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

setup: $(BIN)/bench

# The main job: the bundled tiny DiT4DiT on every libero_spatial task (make run EPISODES=50: the official protocol,
# what `bench results evaluations/dit4dit/libero_spatial` publishes).
EPISODES ?= 3
run: setup
	$(BIN)/bench run --suite libero_spatial --policy dit4dit --episodes $(EPISODES)

test: setup
	$(BIN)/python -m pytest

test-slow: setup
	$(BIN)/python -m pytest -m slow

# The Ray tests (slow: a head and a worker node started on this machine) in a network namespace of their own, so
# every Ray process serves and connects on 127.0.0.1 only (Ray otherwise advertises the machine's own address).
# Needs root (or unshare rights) and the extra: pip install -e '.[ray]'.
IN_NETNS := unshare --net sh -c 'ip link set lo up && exec "$$0" "$$@"'
test-ray: setup
	$(BIN)/pip install -q -e '.[ray]'
	$(IN_NETNS) $(BIN)/python -m pytest -m slow tests/test_ray.py

# On a machine with a CUDA GPU and a CUDA build of torch (the venv's torch is the CPU wheel).
test-gpu: setup
	$(BIN)/python -m pytest -m gpu tests/test_gpu.py

# One PDF with every committed result (and its markdown twin), regenerated from results/ (CI builds it too).
report: setup
	$(BIN)/bench report --results results --out reports/report.pdf

# Every committed summary and table recomputed from its committed records (CI runs it).
results-check: setup
	$(BIN)/bench results --check

# The demo sets the trainings and ablations read (bench demos sets lists them all; a rerun continues a stopped one).
demos: setup
	$(BIN)/bench demos make libero_spatial libero_spatial_heldout
