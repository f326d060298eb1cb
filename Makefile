# The README's commands: `make run` and `make test` (plus `make lint`, `make bench`).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
PORT ?= 8000
CONVEX_CLIENT := tests/convex_client
BROWSER_TESTS := tests/browser
# One process more than the cores: the quick tests' waits (sockets, a scheduled price's moment)
# would leave a core idle, which the extra process uses.
QUICK_PROCESSES ?= $(shell echo $$(( $$(nproc) + 1 )))
# Every target keeps Python's compiled modules (in __pycache__, ignored by git), even where the
# environment asks for none: without them each run, each test process and each server the tests
# start would compile the project again, and pytest would rewrite the asserts of every plugin's
# modules (half of the quick tests' collection).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test quick lint bench install install-test clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install -q --disable-pip-version-check -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

$(CONVEX_CLIENT)/node_modules/.installed: $(CONVEX_CLIENT)/package-lock.json
	cd $(CONVEX_CLIENT) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

$(BROWSER_TESTS)/node_modules/.installed: $(BROWSER_TESTS)/package-lock.json  # axe-core
	cd $(BROWSER_TESTS) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

# LiteLLM's real price maps, from its wheels on PyPI (tests/litellm_maps.py)
LITELLM_MAPS := $(VENV)/litellm-maps
LITELLM_VERSIONS := 1.110.2 1.80.0

$(LITELLM_MAPS)/.installed: $(VENV)/.installed-test tests/litellm_maps.py
	$(BIN)/python -m tests.litellm_maps $(LITELLM_MAPS) $(LITELLM_VERSIONS)
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test $(CONVEX_CLIENT)/node_modules/.installed \
	$(BROWSER_TESTS)/node_modules/.installed $(LITELLM_MAPS)/.installed

run: install
	$(BIN)/flask --app wsgi db upgrade
	$(BIN)/flask --app wsgi seed
	$(BIN)/flask --app wsgi bootstrap
	PORT=$(PORT) $(BIN)/gunicorn -c deploy/gunicorn.conf.py wsgi:app

test: install-test
	$(BIN)/pytest $(PYTEST_ARGS)

quick: install-test  # the inner loop: all but what starts servers, Node or Chromium, and sweeps
	$(BIN)/pytest -m "not slow and not sweep" -n $(QUICK_PROCESSES) -q $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check .

bench: install-test
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(CONVEX_CLIENT)/node_modules $(BROWSER_TESTS)/node_modules
