# tm402-nb — two commands for a new user: `make demo` and `make test`.
# Every target sets up .venv (stdlib venv) and installs what it needs and nothing more, so a fresh
# clone needs only Python 3.11+. uv (from PyPI, installed into the venv) resolves and installs: it is
# several times faster than pip on a first setup. Each extra has its own stamp, re-made when
# pyproject.toml changes: the demo never waits for JupyterLab or the test tools.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
PYTEST_WORKERS ?= 2
LINT_PATHS := tm402_nb tests bench notebooks conftest.py

# -q: our own "==>" line says what each step does; uv still prints errors.
UV_INSTALL := $(UV) pip install -q --python $(BIN)/python
# One stamp per extra installed (tm402-nb itself and its runtime dependencies come with each).
STAMP  := $(VENV)/.installed-
say     = @printf '==> %s\n' "$(1)"

.PHONY: help setup demo test test-fast lint typecheck lab bench notebooks clean

help:
	@echo "make demo       - start the sandbox, make paid calls, show what each cost"
	@echo "make test       - lint, typecheck, then every test (notebooks and the browser suite included)"
	@echo "make lint       - ruff check, ruff format --check, vulture (dead code)"
	@echo "make typecheck  - mypy on tm402_nb"
	@echo "make lab        - open JupyterLab on notebooks/"
	@echo "make bench      - benchmarks side by side with the reference x402 SDK"

$(BIN)/python:
	$(call say,creating $(VENV) ($(PYTHON) -m venv))
	@$(PYTHON) -m venv $(VENV)

# pip only bootstraps uv. -qq keeps pip's warnings about the machine's own pip configuration
# (e.g. an extra index that is not there) out of a newcomer's first screen; errors still show.
$(UV): | $(BIN)/python
	$(call say,installing uv into $(VENV) (pip))
	@$(BIN)/python -m pip install -qq --disable-pip-version-check "uv>=0.5"

$(STAMP)%: pyproject.toml | $(UV)
	$(call say,installing tm402-nb[$*] (uv))
	@$(UV_INSTALL) -e ".[$*]"
	@touch $@

setup: $(STAMP)demo $(STAMP)lint $(STAMP)test $(STAMP)lab

demo: $(STAMP)demo
	$(call say,running notebooks/00_quickstart.ipynb headless against the sandbox)
	@$(BIN)/tm402-nb demo

lint: $(STAMP)lint
	$(call say,ruff check)
	@$(BIN)/ruff check $(LINT_PATHS)
	$(call say,ruff format --check)
	@$(BIN)/ruff format --check $(LINT_PATHS)
	$(call say,vulture (dead code; settings in pyproject.toml))
	@$(BIN)/vulture

# mypy follows imports into the demo's notebook runner, so that extra is installed too.
typecheck: $(STAMP)lint $(STAMP)demo
	$(call say,mypy (settings in pyproject.toml))
	@$(BIN)/mypy

# The browser suite (tests/ui) drives JupyterLab in Debian's headless Chromium; without chromium and
# chromium-driver it is skipped, and said so loudly before and after the run (.ci/run installs them).
CHROMIUM     ?= /usr/bin/chromium
CHROMEDRIVER ?= /usr/bin/chromedriver
export TM402_UI_CHROMIUM := $(CHROMIUM)
export TM402_UI_CHROMEDRIVER := $(CHROMEDRIVER)
ui_check = if [ ! -x "$(CHROMIUM)" ] || [ ! -x "$(CHROMEDRIVER)" ]; then \
	printf '==> !!! BROWSER SUITE SKIPPED: %s or %s is missing (apt-get install chromium chromium-driver) !!!\n' \
		"$(CHROMIUM)" "$(CHROMEDRIVER)"; fi

test: lint typecheck $(STAMP)test
	$(call say,pytest on $(PYTEST_WORKERS) workers (notebooks and the browser suite included))
	@$(ui_check)
	@status=0; $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup --nbmake --nbmake-timeout=60 \
		--nbmake-kernel=python3 $(PYTEST_ARGS) || status=$$?; $(ui_check); exit $$status

test-fast: $(STAMP)test
	$(call say,pytest without the slow suites and the browser)
	@$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -m "not slow and not ui" $(PYTEST_ARGS)

lab: $(STAMP)lab
	$(call say,starting JupyterLab on notebooks/ (sandbox mode unless TM402_MODE is set))
	@TM402_MODE=$${TM402_MODE:-sandbox} $(BIN)/jupyter lab notebooks/

bench: $(STAMP)test
	$(call say,benchmarks (writes bench/RESULTS.md))
	@$(BIN)/python -m bench

# Re-execute the tutorials in place (sandbox mode) so they are committed with fresh outputs.
notebooks: $(STAMP)demo $(STAMP)lint
	$(call say,re-executing the tutorials)
	@$(BIN)/python notebooks/build.py

clean:
	rm -rf $(VENV) build .pytest_cache .hypothesis .mypy_cache .ruff_cache
