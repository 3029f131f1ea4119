# relaygate: two commands on a fresh clone.
#   make run   - create .venv if missing, install, start the gateway on the embedded PostgreSQL
#   make test  - create .venv if missing, install with the test extra, run ruff and mypy, install the
#                example toolchains that are missing (.ci/toolchains), run pytest

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test demo lint toolchains clean

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
	$(BIN)/relaygate serve

demo: $(VENV)/.installed
	$(BIN)/relaygate demo

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

toolchains:
	bash .ci/toolchains

# Test files run on PYTEST_WORKERS processes at once (pytest-xdist; each file stays on one worker,
# so module fixtures start once; each worker has its own embedded PostgreSQL). Most tests wait on
# sockets, not on the CPU, so 2 workers pay even on 2 cores. Files are handed out in collection
# order, which tests/conftest.py starts with the longest. PYTEST_WORKERS=0 runs one process.
PYTEST_WORKERS ?= 2

test: lint toolchains
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
