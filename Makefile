# Set-up is part of every target: a fresh machine needs only Python 3.11 and make.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

# Large files (demos) live outside the work tree; override with make DATA=...
DATA ?= $(HOME)/.cache/dit4dit-bench
# Which training sets: 128_from224 (rendered as the policy sees, resized as models resize observations: one pixel
# path) or 128 (rendered natively at 128 px: what the bundled checkpoint was trained on).
DEMOS ?= 128_from224
# Camera frames on every FRAME_EVERY-th step of a demo (states and actions on every step): rendering is most of a
# demo's cost here, neighbouring frames are nearly alike, and every model's frame spacing (future_stride 8) is a
# multiple of it. FRAME_EVERY=1 writes LIBERO's layout (a frame per step).
FRAME_EVERY ?= 4

.PHONY: dit4dit-retrain-resume setup run test test-slow test-gpu perf-gpu test-ray perf-executors perf perf-policy perf-math reference verify-reference verify-cross-machine heldout-demos future-slot demos replay-demos expert-eval train bundle dit4dit-eval dit4dit-videos random-eval dit4dit-vs-random baseline-bundle baseline-eval baselines-compare heldout-demos-native ablations ablations-smoke report bench-micro perf-remote demos-spatial dit4dit-retrain dit4dit-vs-v1 gr1-setup proxy-init-states proxy-expert proxy-demos proxy-train proxy-bundle proxy-eval gr1-table results-all zeroshot-init-states zeroshot-expert zeroshot-eval zeroshot-table

# The training budget of every model compared here (DiT4DiT and the baselines alike): 3000 steps of batch 16,
# which (with the demos) fits one working session of 2 CPU cores; the first bundled checkpoint had 10000.
STEPS ?= 3000
MODEL ?= dit4dit
TRAIN_DIR ?= runs/train/$(if $(filter dit4dit,$(MODEL)),tiny_spatial,$(MODEL)_tiny_spatial)
BUNDLED := bench/checkpoints/dit4dit_tiny_libero_spatial

$(BIN)/bench: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

setup: $(BIN)/bench

# The main job: the bundled tiny DiT4DiT on every libero_spatial task (make run EPISODES=50: the
# official protocol, what make dit4dit-eval publishes).
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

# Episodes/hour of the same episodes on the local executor and on Ray, on these cores (results/perf/executors.json).
perf-executors: setup
	$(BIN)/pip install -q -e '.[ray]'
	$(IN_NETNS) $(BIN)/bench perf executors --tasks 0,1 --episodes 4 --out results/perf/executors.json

perf: setup
	$(BIN)/bench perf eval --suite libero_spatial --tasks 0,1 --episodes 2 --out results/perf/eval.json

# DiT4DiT chunk latency, early exit vs full pass, training samples/s. On a CPU the full config (2.2 B) runs
# at batch 1 only (~40 s a chunk); on a GPU: bench perf policy --configs full --batches 1,8 --device cuda.
perf-policy: setup
	$(BIN)/bench perf policy --configs tiny --batches 1,8 --repeats 5 --threads 1 --out results/perf/policy_tiny.json
	$(BIN)/bench perf policy --configs full --batches 1 --repeats 1 --threads 1 --out results/perf/policy_full.json

# On a machine with a CUDA GPU and a CUDA build of torch (the venv's torch is the CPU wheel): every model trains
# there in bf16 and serves on GPU and CPU (tests/test_gpu.py; skipped without CUDA), and the chunk latency and
# training throughput of both DiT4DiT configs on the GPU (results/perf/policy_gpu.json).
test-gpu: setup
	$(BIN)/python -m pytest -m gpu tests/test_gpu.py

perf-gpu: setup
	$(BIN)/bench perf policy --configs tiny,full --batches 1,8,32 --repeats 5 --train-batch 8 --device cuda \
	  --out results/perf/policy_gpu.json

# What portable float math costs against native (chunk latency and end-to-end wall time, one run).
perf-math: setup
	$(BIN)/bench perf math --out results/perf/math.json

# Records to check other machines against: `make run`'s 30 episodes in portable math, with digests.
reference: setup
	$(BIN)/bench run --suite libero_spatial --policy dit4dit --episodes 3 --math portable --out runs/reference \
	  --resume --publish results/reference

# Rerun those records (all 30 episodes): on any x86-64 CPU with AVX2 every episode should come out exact
# (exit 0). REFERENCE=<records.jsonl or run dir> checks other records.
REFERENCE ?= results/reference/libero_spatial_episodes.jsonl
verify-reference: setup
	$(BIN)/bench verify $(REFERENCE) --all

# The second machine's records (../shared/reference/cross_machine: make run on an AVX2-only AMD EPYC, native
# math, and again with MKL/oneDNN/ATen pinned by environment; the scripted expert, which uses no torch) verified
# here in both modes, into results/verify/.
# bench verify exits non-zero when episodes are not exact, which is a finding here, not a failure of the target.
XM := ../shared/reference/cross_machine
PINNED_ENV := MKL_CBWR=AVX2,STRICT ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2
# Those records ran the first bundled checkpoint, kept in results/dit4dit_v1/checkpoint since it was replaced.
V1 := results/dit4dit_v1/checkpoint
verify-cross-machine: setup
	mkdir -p results/verify
	-$(BIN)/bench verify $(XM)/make_run_default_episodes.jsonl --all --math native --checkpoint $(V1) \
	  --out runs/verify/xm_native
	-$(BIN)/bench verify $(XM)/make_run_default_episodes.jsonl --all --math portable --checkpoint $(V1) \
	  --out runs/verify/xm_portable
	-$(PINNED_ENV) $(BIN)/bench verify $(XM)/make_run_isa_pinned_episodes.jsonl --all --math native \
	  --checkpoint $(V1) --out runs/verify/xm_pinned
	-$(BIN)/bench verify $(XM)/scripted_episodes.jsonl --all --math portable --out runs/verify/xm_scripted
	for v in native portable pinned scripted; do for f in md json; do \
	  cp runs/verify/xm_$$v/verify.$$f results/verify/cross_machine_$$v.$$f; done; done

# The bundled checkpoint: tiny DiT4DiT on the libero_spatial demos (resumable: rerun to continue). The baselines
# train the same way at the same budget: make train MODEL=groot|flare|pi05 (into runs/train/<model>_tiny_spatial).
# fp32 by default: bf16 autocast pays off only on CPUs with bf16 units (avx512_bf16, AMX) or a GPU; on an
# AVX2-only CPU it is several times slower (bench perf policy: results/perf/policy_tiny*.json).
PRECISION ?= fp32
train: setup
	$(BIN)/bench train --policy $(MODEL) --config tiny --data $(DATA)/demos/libero_spatial_$(DEMOS).hdf5 \
	  --steps $(STEPS) --out $(TRAIN_DIR) --precision $(PRECISION) --resume

# Copy the trained checkpoint into the package; the old evaluations' episodes belong to the old
# checkpoint (a run dir refuses another one), so they are moved aside.
# Idempotent: a second `make bundle` of the same checkpoint changes nothing (so a chain can be rerun).
# A new bundled checkpoint changes what `make run` does: regenerate results/reference (make reference) and
# the golden digest in tests/test_mathmode.py with it.
bundle:
	@if cmp -s $(TRAIN_DIR)/checkpoint/model.safetensors $(BUNDLED)/model.safetensors; then \
	  echo "$(BUNDLED) already holds $(TRAIN_DIR)/checkpoint"; \
	else \
	  rm -rf $(BUNDLED) && mkdir -p $(BUNDLED) results/dit4dit && \
	  cp $(TRAIN_DIR)/checkpoint/* $(BUNDLED)/ && \
	  cp $(TRAIN_DIR)/losses.csv $(TRAIN_DIR)/losses.png $(TRAIN_DIR)/train_config*.json results/dit4dit/ && \
	  for run in runs/dit4dit/libero_spatial runs/dit4dit/videos; do \
	    if [ -d $$run ]; then mv $$run $$run.before-$$(date +%Y%m%d-%H%M%S); fi; done; \
	fi

# The bundled checkpoint at the official protocol (50 episodes per task), into results/dit4dit/.
dit4dit-eval: setup
	$(BIN)/bench run --suite libero_spatial --policy dit4dit --out runs/dit4dit/libero_spatial --resume --publish results/dit4dit

# What the bundled checkpoint does: the first 2 episodes of each task recorded, on one contact sheet
# (results/dit4dit/videos/libero_spatial_videos.png, failures first).
dit4dit-videos: setup
	$(BIN)/bench run --suite libero_spatial --policy dit4dit --episodes 2 --video 2 --out runs/dit4dit/videos \
	  --resume --publish results/dit4dit/videos

# $(call export_bundle,<training run>,<bundle dir>,<curves dir>): a trained checkpoint into the package, stored as
# each model's libero_spatial checkpoint is (DiT4DiT in fp32, the baselines in bf16), and its training curves and
# config into results/, so that evaluations need neither the demos nor runs/ (both are gone with the machine).
define export_bundle
rm -rf $(2)
$(BIN)/bench export $(1)/checkpoint --out $(2) --dtype $(if $(filter dit4dit,$(MODEL)),fp32,bf16)
mkdir -p $(3)
cp $(1)/losses.csv $(1)/losses.png $(1)/train_config*.json $(3)/
endef

# A baseline end to end (MODEL=groot|flare|pi05): `make train MODEL=groot` (same demos, steps, batch and seed
# as DiT4DiT), then publish its curves and ship its checkpoint in bf16 (under 10 MB), then evaluate it at the
# official protocol (50 episodes per task) into results/<model>/.
baseline-bundle:
	@case "$(MODEL)" in groot|flare|pi05) ;; *) echo "MODEL=$(MODEL): choose groot, flare or pi05"; exit 2;; esac
	$(call export_bundle,$(TRAIN_DIR),bench/checkpoints/$(MODEL)_tiny_libero_spatial,results/$(MODEL))

baseline-eval: setup
	$(BIN)/bench run --suite libero_spatial --policy $(MODEL) --out runs/$(MODEL)/libero_spatial --resume \
	  --publish results/$(MODEL) $(RUN_ARGS)

# DiT4DiT beside every baseline evaluated so far, and every pair of baselines: per task, paired tests (McNemar,
# Holm, bootstrap, MDD) and Fisher p, and the action-loss curves against step and training time (needs the
# evaluations and curves above).
BASELINES := groot flare pi05
COMPARE_NOTE := Tiny models trained from scratch on this machine (no pretrained image or video weights can be had \
  offline; every model reads the instruction through the same frozen MiniLM), on the same libero_spatial demos with \
  the same budget and seed, predicting the same action chunk by flow matching (GR00T- and FLARE-style share \
  DiT4DiT's action DiT; pi0.5-style has its own action expert): a controlled comparison of how the action head is \
  conditioned, not of the published 2B-scale models. training_curves.md checks the shared data, budget, seed and parameter counts \
  from each run's train_config.json.
EVALUATED := $(foreach m,$(BASELINES),$(wildcard results/$(m)/libero_spatial_summary.json))
baselines-compare: setup
	@if [ -z "$(EVALUATED)" ]; then echo "no baseline evaluated yet: make baseline-eval MODEL=groot"; exit 2; fi
	$(BIN)/bench compare results/dit4dit/libero_spatial_summary.json $(EVALUATED) \
	  --out results/baselines/libero_spatial_comparison --note "$(COMPARE_NOTE)"
	$(BIN)/bench curves results/dit4dit/losses.csv $(foreach m,$(BASELINES),$(wildcard results/$(m)/losses.csv)) \
	  --out results/baselines/training_curves
	set -- $(foreach m,$(BASELINES),$(if $(wildcard results/$(m)/libero_spatial_summary.json),$(m))); \
	while [ $$# -gt 1 ]; do a=$$1; shift; for b in "$$@"; do \
	  $(BIN)/bench compare results/$$a/libero_spatial_summary.json results/$$b/libero_spatial_summary.json \
	    --out results/baselines/libero_spatial_$${a}_vs_$$b || exit 1; \
	done; done

# The paper's ablations at the small budget (about six hours each on 2 cores), into results/ablations/.
# Jobs are cached by hash: run it again after a stop and it continues. Each finished variant's scores go to
# results/ablations/scores/ (commit them): on another machine, without runs/, those variants are not redone.
# `bench ablate --list` shows them all.
ABLATIONS ?= feature-timestep feature-layer data-fraction
ABLATE_BUDGET ?= small
ablations: setup
	$(BIN)/bench ablate $(foreach a,$(ABLATIONS),--$(a)) --budget $(ABLATE_BUDGET) --scores results/ablations/scores

# The other ablations at the smoke budget (seconds per variant: the pipeline end to end on the real demos, not
# a measurement), into results/ablations/smoke/.
ABLATIONS_SMOKE ?= feature-denoise-steps action-timestep-dist video-timestep-dist gradient video-loss-weight \
  convergence video-pretraining action-repeats state-encoding
ablations-smoke: setup
	$(BIN)/bench ablate $(foreach a,$(ABLATIONS_SMOKE),--$(a)) --budget smoke --out results/ablations/smoke

# What the remote path costs (bench serve + openpi-client against in-process), and throughput by client count.
perf-remote: setup
	$(BIN)/bench perf remote --policy dit4dit --out results/perf/remote.json

# Micro-benchmarks (pytest-benchmark): one action chunk per model, one env step, one render.
bench-micro: setup
	$(BIN)/python -m pytest benchmarks -q -p no:cacheprovider -o addopts="" --benchmark-json results/perf/micro.json

# One PDF with every committed result (and its markdown twin), regenerated from results/ (CI builds it too).
report: setup
	$(BIN)/bench report --results results --out reports/report.pdf

# The floor DiT4DiT is compared against: uniform random actions, same protocol (50 per task).
random-eval: setup
	$(BIN)/bench run --suite libero_spatial --policy random --out runs/random/libero_spatial --resume --publish results/random $(RUN_ARGS)

# Per task, with 95% intervals and a one-sided Fisher exact p (needs both evaluations above).
dit4dit-vs-random: setup
	$(BIN)/bench compare results/dit4dit/libero_spatial_summary.json results/random/libero_spatial_summary.json \
	  --out results/dit4dit/libero_spatial_vs_random

# Training sets for DiT4DiT and the baselines: 50 successful expert demos per task at 128x128.
# Reruns top the files up (an interrupted run keeps what it made).
demos: demos-spatial
	$(BIN)/bench demos generate --suite libero_object --per-task 50 --resolution 128 --frame-every $(FRAME_EVERY) --out $(DATA)/demos/libero_object_$(DEMOS).hdf5

demos-spatial: setup
	$(BIN)/bench demos generate --suite libero_spatial --per-task 50 --resolution 128 --frame-every $(FRAME_EVERY) --out $(DATA)/demos/libero_spatial_$(DEMOS).hdf5

# The retrained DiT4DiT from start to end, every step resumable (rerun it after a stop): the training set,
# held-out demos, STEPS steps, the bundle, the official-protocol evaluation, its comparisons with random and
# with the first bundled checkpoint (results/dit4dit_v1), and its contact sheet.
dit4dit-retrain: demos-spatial heldout-demos train bundle dit4dit-eval dit4dit-vs-random dit4dit-vs-v1 dit4dit-videos
# Once training has begun, resume it without touching its data (more demos would change the data's fingerprint,
# which a resumed training refuses).
dit4dit-retrain-resume: train bundle dit4dit-eval dit4dit-vs-random dit4dit-vs-v1 dit4dit-videos

dit4dit-vs-v1: setup
	$(BIN)/bench compare results/dit4dit/libero_spatial_summary.json results/dit4dit_v1/libero_spatial_summary.json \
	  --out results/dit4dit/libero_spatial_vs_v1

# Held-out demos: 2 per libero_spatial task, attempts from 1000 on (training sets number from 0, so none of
# these can be in one). heldout-demos: the training set's pixel path (ablations score on them);
# heldout-demos-native: native 128 px renders, as the first bundled checkpoint's training set was made.
heldout-demos: setup
	$(BIN)/bench demos generate --suite libero_spatial --per-task 2 --resolution 128 --first-attempt 1000 \
	  --frame-every $(FRAME_EVERY) --out $(DATA)/demos/libero_spatial_$(DEMOS)_heldout.hdf5

heldout-demos-native: setup
	$(BIN)/bench demos generate --suite libero_spatial --per-task 2 --resolution 128 --first-attempt 1000 \
	  --pixel-path native_render --out $(DATA)/demos/libero_spatial_128_heldout.hdf5

# What the future-frame slot should hold when the first bundled checkpoint's features are taken (issue 13).
future-slot: heldout-demos-native
	$(BIN)/bench analyze future-slot --data $(DATA)/demos/libero_spatial_128_heldout.hdf5 --checkpoint $(V1) \
	  --out results/dit4dit/future_slot

# Every demo of both training sets replayed from its recorded initial state (all must succeed), into results/demos/.
# A run dir holds one demo file's replays (records carry its hash): after `make demos` changed a file,
# remove runs/replay/<suite> first.
replay-demos: setup
	for s in libero_spatial libero_object; do \
	  $(BIN)/bench run --suite $$s --policy replay --demos $(DATA)/demos/$${s}_$(DEMOS).hdf5 --out runs/replay/$$s \
	    --resume --publish results/demos || exit 1; \
	done

# The scripted expert at the official protocol (50 episodes per task), into results/scripted/.
expert-eval: setup
	for s in libero_spatial libero_object libero_goal libero_10; do \
	  $(BIN)/bench run --suite $$s --policy scripted --out runs/scripted/$$s --resume --publish results/scripted || exit 1; \
	done

# RoboCasa GR1: its own environment (--standin without the downloaded assets; see README), and the proxy
# of its 24 tasks in LIBERO: initial states (committed), the expert's success, its demos.
gr1-setup: setup
	$(BIN)/bench setup robocasa-gr1 $(if $(GR1_ASSETS),--assets $(GR1_ASSETS),--standin)

proxy-init-states: setup
	$(BIN)/bench init-states --suite gr1_tabletop_proxy --n 50

proxy-expert: setup
	$(BIN)/bench run --suite gr1_tabletop_proxy --policy scripted --episodes $(PROXY_EPISODES) \
	  --out runs/scripted/gr1_tabletop_proxy --resume --publish results/scripted

# PROXY_DEMOS per task: 20 x 24 tasks is about the 500 demos of each libero_spatial training set (and under an hour
# to generate on 2 cores, so demos and a model's training fit one working session on a fresh machine).
PROXY_DEMOS ?= 20
proxy-demos: setup
	$(BIN)/bench demos generate --suite gr1_tabletop_proxy --per-task $(PROXY_DEMOS) --resolution 128 \
	  --frame-every $(FRAME_EVERY) --out $(DATA)/demos/gr1_tabletop_proxy_$(DEMOS).hdf5

# A model (MODEL=dit4dit|groot|flare|pi05) trained on the proxy's demos at the libero_spatial budget, evaluated
# on the proxy (PROXY_MODEL_EPISODES per task), and every proxy result beside the published GR1 numbers (results/gr1/).
# A model's episode runs the whole 400 steps when it fails, rendering both cameras at every chunk, so it costs several
# times an expert episode (measured in results/gr1/gr1_tabletop_proxy.md): 10 per task (240 episodes, about the 200
# of each zero-shot split, on the first 10 of the expert's 20 initial states) keeps each model's evaluation short.
PROXY_DIR = runs/train/$(MODEL)_tiny_gr1_proxy
PROXY_EPISODES ?= 20
PROXY_MODEL_EPISODES ?= 10
proxy-train: setup
	$(BIN)/bench train --policy $(MODEL) --config tiny --data $(DATA)/demos/gr1_tabletop_proxy_$(DEMOS).hdf5 \
	  --steps $(STEPS) --out $(PROXY_DIR) --precision $(PRECISION) --resume

# The trained checkpoint into the package (bench/checkpoints/<model>_tiny_gr1_tabletop_proxy), its curves into
# results/<model>/gr1_proxy_train/ (export_bundle).
PROXY_BUNDLE = bench/checkpoints/$(MODEL)_tiny_gr1_tabletop_proxy
proxy-bundle:
	rm -rf results/$(MODEL)/gr1_proxy_train
	$(call export_bundle,$(PROXY_DIR),$(PROXY_BUNDLE),results/$(MODEL)/gr1_proxy_train)

proxy-eval: setup
	$(BIN)/bench run --suite gr1_tabletop_proxy --policy $(MODEL) --checkpoint $(PROXY_BUNDLE) \
	  --episodes $(PROXY_MODEL_EPISODES) --out runs/$(MODEL)/gr1_tabletop_proxy --resume --publish results/$(MODEL)

# With DiT4DiT and a baseline evaluated, also their paired comparison on the proxy's episodes and the proxy's
# training curves (as baselines-compare does on libero_spatial).
PROXY_COMPARE_NOTE := Tiny models trained from scratch on this machine, every one on the same GR1-proxy demos (20 expert \
  demos per task) with the same budget and seed (GR00T- and FLARE-style share DiT4DiT's action DiT; pi0.5-style has \
  its own action expert), evaluated on the same proxy episodes: LIBERO \
  objects and the Panda arm standing in for RoboCasa GR1, not the published benchmark or models. \
  gr1_tabletop_proxy_training_curves.md checks the shared data, budget and seed.
comma := ,
space := $(subst ,, )
PROXY_TRAINED = $(foreach m,dit4dit $(BASELINES),$(if $(wildcard results/$(m)/gr1_proxy_train/losses.csv),$(m)))
PROXY_EVALUATED = $(foreach m,$(BASELINES),$(wildcard results/$(m)/gr1_tabletop_proxy_summary.json))
gr1-table: setup
	$(BIN)/bench analyze gr1 -r results/scripted \
	  $(foreach m,dit4dit $(BASELINES),$(if $(wildcard results/$(m)/gr1_tabletop_proxy_summary.json),-r results/$(m))) \
	  --out results/gr1/gr1_tabletop_proxy
	$(if $(and $(wildcard results/dit4dit/gr1_tabletop_proxy_summary.json),$(PROXY_EVALUATED)), \
	  $(BIN)/bench compare results/dit4dit/gr1_tabletop_proxy_summary.json $(PROXY_EVALUATED) \
	    --out results/gr1/gr1_tabletop_proxy_comparison --note "$(PROXY_COMPARE_NOTE)")
	$(if $(PROXY_TRAINED),$(BIN)/bench curves $(foreach m,$(PROXY_TRAINED),results/$(m)/gr1_proxy_train/losses.csv) \
	  --labels $(subst $(space),$(comma),$(strip $(PROXY_TRAINED))) --out results/gr1/gr1_tabletop_proxy_training_curves)

# Zero-shot splits (bench/sim/libero/zeroshot.py): initial states (committed; resumable per task), the expert's
# success on every split (results/scripted/), a policy on its training set's splits and LIBERO-PRO's object and
# swap variants (MODEL=dit4dit|groot|flare|pi05: results/<model>/), and the table beside in-distribution success.
ZEROSHOT := $(foreach t,libero_spatial libero_object,$(foreach k,object category quantity,$(t)_zeroshot_$(k)))
zeroshot-init-states: setup
	for s in $(ZEROSHOT); do $(BIN)/bench init-states --suite $$s --n 20 || exit 1; done

zeroshot-expert: setup
	for s in $(ZEROSHOT); do $(call published,scripted,$${s}) \
	  $(BIN)/bench run --suite $$s --policy scripted --out runs/scripted/$$s --resume --publish results/scripted || exit 1; \
	done

# LIBERO-PRO's variants run PRO_EPISODES per task (not the official 50): 200 episodes, as every zero-shot suite
# has (bench/suites.py ZEROSHOT_EPISODES), so each split of the table is measured as well as the others.
PRO_EPISODES ?= 20
zeroshot-eval: setup
	for s in $(foreach k,object category quantity,libero_spatial_zeroshot_$(k)); do $(call published,$(MODEL),$${s}) \
	  $(BIN)/bench run --suite $$s --policy $(MODEL) --out runs/$(MODEL)/$$s --resume --publish results/$(MODEL) || exit 1; \
	done
	for s in libero_spatial_object libero_spatial_swap; do $(call published,$(MODEL),$${s}) \
	  $(BIN)/bench run --suite $$s --policy $(MODEL) --episodes $(PRO_EPISODES) --out runs/$(MODEL)/$$s --resume \
	    --publish results/$(MODEL) || exit 1; \
	done

zeroshot-table: setup
	$(BIN)/bench analyze zeroshot --training libero_spatial $(foreach m,dit4dit dit4dit_v1 $(BASELINES),$(if $(wildcard results/$(m)),-r results/$(m))) \
	  --out results/zeroshot/libero_spatial
	$(BIN)/bench analyze zeroshot --training libero_spatial -r results/scripted --out results/zeroshot/libero_spatial_expert
	$(BIN)/bench analyze zeroshot --training libero_object -r results/scripted --out results/zeroshot/libero_object_expert

# Every long-running result, in the order the issues need them (days of 2 CPU cores in all). A step whose
# result is committed is skipped (results/ is the record; runs/, the demos and the checkpoints may be gone with
# the machine), and every other step resumes, so after a stop run it again:
#   nohup make results-all > results-all.log 2>&1 &
# To redo a published evaluation, remove its results/<model>/<suite>_* files first.
published = if [ -f results/$(1)/$(2)_summary.json ]; then echo "$(2): published in results/$(1), skipped"; continue; fi;
# A table is rebuilt only when it is missing or one of its sources (files under results/ named by the find
# expression $(2)) is newer than it, so rerunning results-all leaves committed tables and their provenance alone.
# (A fresh clone's mtimes follow checkout order, so there a table may be rebuilt once, to the same numbers.)
stale = [ ! -f $(1) ] || [ -n "$$(find results -newer $(1) \( $(2) \) -print -quit)" ]
ZEROSHOT_SOURCES = -name '*zeroshot*_summary.json' -o -name 'libero_spatial_object_summary.json' -o -name 'libero_spatial_swap_summary.json'
GR1_SOURCES = -name 'gr1_tabletop_proxy_summary.json' -o -path '*/gr1_proxy_train/losses.csv'
# The GR1 proxy's models still to train and bundle; the baselines first (shorter trainings, so more of them are
# bundled before a session ends: the demos and runs/ may not outlive it).
PROXY_UNTRAINED = $(strip $(foreach m,$(BASELINES) dit4dit,$(if $(wildcard bench/checkpoints/$(m)_tiny_gr1_tabletop_proxy/model.safetensors),,$(m))))
ABLATIONS_LEFT = $(strip $(foreach a,$(ABLATIONS),$(if $(wildcard results/ablations/$(subst -,_,$(a)).csv),,$(a))))
results-all: setup
	test -f results/dit4dit/libero_spatial_summary.json || $(MAKE) dit4dit-retrain
	$(MAKE) zeroshot-expert
	test -f results/scripted/gr1_tabletop_proxy_summary.json || $(MAKE) proxy-expert
	for m in $(BASELINES); do test -f results/$$m/libero_spatial_summary.json || \
	  $(MAKE) train baseline-bundle baseline-eval MODEL=$$m || exit 1; done
	test -f results/baselines/libero_spatial_comparison.csv || $(MAKE) baselines-compare
	$(if $(ABLATIONS_LEFT),$(MAKE) demos-spatial heldout-demos ablations ABLATIONS="$(ABLATIONS_LEFT)")
	$(if $(wildcard results/ablations/smoke/*.csv),,$(MAKE) ablations-smoke)
	for m in dit4dit $(BASELINES); do $(MAKE) zeroshot-eval MODEL=$$m || exit 1; done
	if $(call stale,results/zeroshot/libero_spatial.json,$(ZEROSHOT_SOURCES)); then $(MAKE) zeroshot-table; \
	  else echo "results/zeroshot: up to date, skipped"; fi
	$(if $(PROXY_UNTRAINED),$(MAKE) proxy-demos)
	for m in $(PROXY_UNTRAINED); do $(MAKE) proxy-train proxy-bundle MODEL=$$m || exit 1; done
	for m in dit4dit $(BASELINES); do test -f results/$$m/gr1_tabletop_proxy_summary.json || \
	  $(MAKE) proxy-eval MODEL=$$m || exit 1; done
	if $(call stale,results/gr1/gr1_tabletop_proxy.json,$(GR1_SOURCES)); then $(MAKE) gr1-table; \
	  else echo "results/gr1: up to date, skipped"; fi
