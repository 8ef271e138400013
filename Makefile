# tm402-nb — two commands for a new user: `make demo` and `make test`.
# Every target sets up .venv (stdlib venv) and installs what is missing, so a
# fresh clone needs nothing else.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Re-install when pyproject.toml changes.
STAMP  := $(VENV)/.tm402-installed
PYTEST_WORKERS ?= 2

.PHONY: help setup demo test test-fast lab bench notebooks clean

help:
	@echo "make demo   - start the sandbox, make paid calls, show what each cost"
	@echo "make test   - set up and run every test (notebooks included)"
	@echo "make lab    - open JupyterLab on notebooks/"
	@echo "make bench  - benchmarks side by side with the reference x402 SDK"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[test,lab]"
	@touch $@

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/tm402-nb demo

test: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup --nbmake --nbmake-timeout=60 \
		--nbmake-kernel=python3 $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -m "not slow" $(PYTEST_ARGS)

lab: $(STAMP)
	TM402_MODE=$${TM402_MODE:-sandbox} $(BIN)/jupyter lab notebooks/

bench: $(STAMP)
	$(BIN)/python -m bench

# Re-execute the tutorials in place (sandbox mode) so they are committed with fresh outputs.
notebooks: $(STAMP)
	$(BIN)/python notebooks/build.py

clean:
	rm -rf $(VENV) build .pytest_cache .hypothesis
