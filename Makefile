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
# constraints.txt pins every package the two commands install, at the versions CI tested, so a fresh machine
# gets those and not whatever is newest. Update it on purpose: change pyproject.toml (deleting the pins it
# conflicts with) or upgrade a package in .venv, run `make constraints`, then `make lint test`, and commit
# the new constraints.txt with that change.
CONSTRAINTS := constraints.txt
TORCH := torch==2.13.0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install demo test lint constraints clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c $(CONSTRAINTS) --upgrade pip
	# the local CPU build of torch first, so no dependency pulls a CUDA build
	$(BIN)/pip install -q -c $(CONSTRAINTS) $(TORCH)
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e ".[dev,postgres]"
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
	$(BIN)/lint-imports

# torch is written as the Makefile installs it (without the local build's +cpu label)
constraints: $(STAMP)
	{ echo "# What \`make install\` installs, pinned (see the Makefile: \`make constraints\` rewrites this file)."; \
	  $(BIN)/pip freeze --all --exclude-editable | sed 's/^torch==.*/$(TORCH)/'; } > $(CONSTRAINTS)

clean:
	rm -rf $(VENV) $(WS)
