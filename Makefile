# The two commands of the README: `make run` and `make test`. Both create the
# virtual environment and install what they need, so a fresh clone works.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8080
DATA   ?= ./data

.PHONY: run test lint typecheck pytest browser bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.stamp-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.stamp-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.stamp-run

install: $(VENV)/.stamp-run

run: $(VENV)/.stamp-run
	$(BIN)/postflow-webhooks serve --host $(HOST) --port $(PORT) --data-dir $(DATA)

lint: $(VENV)/.stamp-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(VENV)/.stamp-test
	$(BIN)/mypy

# The browser tests drive Debian's chromium. Install it when we can (root or
# passwordless sudo with apt-get, as in CI); otherwise say loudly that the
# browser tests will not run, and pytest deselects them and says so again.
APT_CHROMIUM = apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 || \
	{ apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; }
HAVE_CHROMIUM = { [ -n "$$POSTFLOW_CHROMIUM" ] || command -v chromium >/dev/null 2>&1; }

browser:
	@if $(HAVE_CHROMIUM); then \
		echo "chromium: $${POSTFLOW_CHROMIUM:-$$(command -v chromium)}"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "chromium: installing Debian's chromium for the browser tests..."; \
		$(APT_CHROMIUM) || true; \
	elif command -v apt-get >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		echo "chromium: installing Debian's chromium (sudo) for the browser tests..."; \
		sudo -n sh -c '$(APT_CHROMIUM)' || true; \
	fi; \
	if ! $(HAVE_CHROMIUM); then \
		echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"; \
		echo "!!! chromium could not be installed: THE BROWSER TESTS WILL NOT RUN."; \
		echo "!!! Install it (apt-get install chromium) or set POSTFLOW_CHROMIUM."; \
		echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"; \
	fi

pytest: $(VENV)/.stamp-test browser
	@if $(HAVE_CHROMIUM); then $(BIN)/pytest; else POSTFLOW_BROWSER_TESTS=off $(BIN)/pytest; fi

test: lint typecheck pytest

bench: $(VENV)/.stamp-test
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
