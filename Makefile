# The two commands: `make demo` (main job on the embedded default) and `make test` (the whole suite).
# Both create .venv and install everything on a fresh machine; re-running them is safe.
# `make demo` builds the demo workspace once (later runs reuse it), prints example searches and
# recommendations, then serves the storefront and API at the printed URL (HOST/PORT override).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
WS ?= workspace
HOST ?= 127.0.0.1
PORT ?= 8000
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install demo test lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# the local CPU build of torch first, so no dependency pulls a CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev,postgres]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/shopfusion serve --demo --workspace $(WS) --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(WS)
