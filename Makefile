# slidestream — the commands a newcomer needs (see README.md).
#   make up     the local stack (Kafka, MinIO, SeaweedFS, PostgreSQL, Triton, tusd) and services
#   make test   the whole test suite against real servers (what .ci/run calls)
#   make lint   ruff, mypy, the import contract and the AsyncAPI check
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
UV ?= uv
PYTEST_ARGS ?=
PY := $(UV) run --frozen

.PHONY: help setup system-packages uv sync up down status demo models test test-unit test-e2e test-faults test-faults-quick lint format asyncapi chart bench bench-upload bench-deid bench-convert bench-qc bench-inference bench-search bench-search-metadata bench-search-vectors

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

uv:
	@command -v $(UV) >/dev/null 2>&1 || python3 -m pip install --quiet "uv==$(UV_VERSION)"

sync: uv
	$(UV) sync --frozen --all-packages

# Debian packages come from the one list of pins (libs/devstack versions.py); read it with the
# system python so this works before the project environment exists.
system-packages:
	@pkgs=$$(python3 libs/devstack/src/slidestream_devstack/versions.py apt-packages); \
	missing=""; for p in $$pkgs; do dpkg -s "$$p" >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing system packages:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "missing system packages:$$missing"; \
	    echo "run: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

setup: system-packages sync ## create the environment (idempotent)

up: setup ## start the local stack and the services; endpoints in .local/stack.env
	$(PY) slidestream stack up

demo: setup models ## the main job: the stack, sample slides uploaded and followed through every stage
	$(PY) slidestream stack demo

down: ## stop everything `make up` started
	$(PY) slidestream stack down

status: ## what runs where
	$(PY) slidestream stack status

# Torch lives only in Triton's environment (built here if missing); the slides and tiles are made
# in the workspace's. Each step is skipped while its inputs (a hash of their sources) are unchanged.
models: sync ## train the reference models (tissue type, tile embedding) into .local/models
	torch_python=$$($(PY) python -m slidestream_devstack.tools triton-python) && \
	$(PY) python -m slidestream_samples.reference_models build --torch-python "$$torch_python" --out .local/models

test: setup models ## the whole suite: unit, integration (real servers), e2e, the quick fault subset
	$(PY) slidestream stack up
	$(PY) pytest $(PYTEST_ARGS)
	$(PY) pytest tests/faults -m "faults and quick" $(PYTEST_ARGS)

test-unit: sync ## the fast tests only (no servers)
	$(PY) pytest tests/unit $(PYTEST_ARGS)

test-e2e: setup ## every sample layout x {no manifest, manifest} through the running stack
	$(PY) slidestream stack up
	$(PY) pytest tests/e2e $(PYTEST_ARGS)

# The fault suite runs a stack of its own (free ports, .local/faults/), never the one `make up`
# started; the report is rewritten even when a scenario fails (its row then says so).
test-faults: setup ## faults injected under load (tests/faults); rewrites docs/reliability.md
	status=0; $(PY) pytest tests/faults -m faults $(PYTEST_ARGS) || status=$$?; \
	$(PY) python -m tests.support.faults.report --out docs/reliability.md; exit $$status

test-faults-quick: setup ## the fault suite's quick subset (CI-sized: poison and kill -9)
	$(PY) pytest tests/faults -m "faults and quick" $(PYTEST_ARGS)

lint: sync ## ruff, mypy, import contract, AsyncAPI document up to date
	$(PY) ruff check .
	$(PY) ruff format --check .
	$(PY) mypy -p slidestream_contracts -p slidestream_platform -p slidestream_devstack -p slidestream_client -p slidestream_wsi -p slidestream_catalog -p slidestream_upload -p slidestream_deid -p slidestream_convert -p slidestream_qc -p slidestream_inference -p slidestream_modelrepo -p slidestream_samples
	$(PY) lint-imports
	$(PY) python -m slidestream_contracts.asyncapi --check docs/asyncapi.yaml
	$(PY) python -m slidestream_contracts.schemas --check docs/schemas

chart: sync ## lint and render charts/slidestream with the pinned Helm (built on first use)
	helm=$$($(PY) python -m slidestream_devstack.tools helm) && \
	chart=$$($(PY) python -m slidestream_devstack.tools chart-offline) && \
	$$helm lint $$chart --strict --set kafka.bootstrap=kafka:9092,objectStore.endpoint=http://s3:9000,database.existingSecret=slidestream-db && \
	$$helm template slidestream $$chart --kube-version 1.31.0 --set kafka.bootstrap=kafka:9092,objectStore.endpoint=http://s3:9000,database.existingSecret=slidestream-db > /dev/null && \
	echo "chart renders"

format: sync ## apply ruff's fixes and formatting
	$(PY) ruff check --fix .
	$(PY) ruff format .

bench: bench-upload bench-deid bench-convert bench-qc bench-inference bench-search ## every benchmark (results in docs/benchmarks.md)

bench-upload: setup ## CLI upload through tusd vs direct MinIO multipart (1 and 4 GiB)
	$(PY) python -m tests.bench.bench_upload

bench-deid: setup ## de-identify a generated 1.5 GiB SVS vs a server-side copy of it
	$(PY) python -m tests.bench.bench_deid

asyncapi: sync ## regenerate docs/asyncapi.yaml and docs/schemas/ from libs/contracts
	$(PY) python -m slidestream_contracts.asyncapi --out docs/asyncapi.yaml
	$(PY) python -m slidestream_contracts.schemas --out docs/schemas

bench-convert: setup ## convert a generated ~50k x 40k JPEG SVS to DICOM vs wsidicomizer and a plain copy
	$(PY) python -m tests.bench.bench_convert

bench-qc: setup ## QC accuracy (planted vs found blur) at three sizes and speed vs a HistoQC-style pass
	$(PY) python -m tests.bench.bench_qc

bench-inference: setup models ## a slide through the inference service vs a saturated Triton client (stack up)
	$(PY) python -m tests.bench.bench_inference

bench-search: bench-search-metadata bench-search-vectors ## the search benchmarks: cohort queries and similarity

bench-search-metadata: setup ## 10 cohort queries with facets over 1M generated slides, PostgreSQL and SQLite
	$(PY) python -m tests.bench.bench_search_metadata

bench-search-vectors: setup models ## 1 M mosaic vectors: Milvus Lite server vs FAISS flat and HNSW (stack up)
	$(PY) python -m tests.bench.bench_search_vectors
