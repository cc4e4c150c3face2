# The two commands: `make run` (first look, embedded SQLite) and `make test` (the whole suite).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# The first Python >= 3.12 on PATH (pyenv's shims honour .python-version).
PYTHON ?= $(shell for p in python3.13 python3.12 python3 python; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null \
	&& { echo $$p; break; }; done)
HOST ?= 127.0.0.1
PORT ?= 8000
# Tests run with production-like settings, over plain HTTP.
TEST_ENV := DEBUG=0 SECRET_KEY=test-only-secret-key SECURE_SSL_REDIRECT=0 SECURE_COOKIES=0 SECURE_HSTS_SECONDS=0
PYTEST_ARGS ?=

.PHONY: run test lint format install install-runtime migrate bench lock clean

# Two dependency sets, both pinned from pyproject.toml (see `make lock`): requirements.lock is what the
# running product needs; requirements-dev.lock adds the test and tooling group on top of it. Each set
# has its own stamp, so a venv that `make run` filled with the runtime set still gets the test tools
# the first time `make test` needs them, and a fresh clone's `make run` installs no test tool.
$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python 3.12 or newer is required (none found on PATH)." >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(BIN)/.installed-runtime: requirements.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.lock
	@touch $@

$(BIN)/.installed-dev: requirements.lock requirements-dev.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock
	@touch $(BIN)/.installed-runtime $@

install-runtime: $(BIN)/.installed-runtime

install: $(BIN)/.installed-dev

# Regenerates both locks from pyproject.toml with uv (from the dev set), keeping every pin that still
# fits; add --upgrade-package NAME to the first command to move one package. Each lock's header
# repeats its command. The dev lock is constrained by the runtime lock, so the two never disagree.
lock: install
	$(BIN)/uv pip compile pyproject.toml --python-version 3.12 -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --group dev --python-version 3.12 -c requirements.lock \
		-o requirements-dev.lock

# A development .env, so plain `manage.py …` works in this checkout; the environment still wins,
# and production sets real values there instead.
.env:
	@printf '# Written by make run for development. Production sets real values in the environment.\nDEBUG=1\n' > $@

migrate: install-runtime .env
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py migrate --noinput --database sandbox

run: migrate
	DEBUG=1 $(BIN)/python manage.py seed_demo
	@echo
	@echo "  Billing console: http://$(HOST):$(PORT)/"
	@echo "  Sign in as demo / demo (also demo2 / demo; viewer / demo is read-only). Admin: http://$(HOST):$(PORT)/admin/ as support / demo"
	@echo
	DEBUG=1 $(BIN)/python manage.py runserver $(HOST):$(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	$(TEST_ENV) $(BIN)/python -m pytest $(PYTEST_ARGS)

# bench/console.py drives the server with wrk when it is installed, else with a slower Python load
# generator. As root on Debian or Ubuntu, wrk is installed here without asking; otherwise install it yourself.
bench: install
	@command -v wrk >/dev/null || { test "$$(id -u)" = 0 && command -v apt-get >/dev/null \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null 2>&1; } \
		|| echo "wrk is not installed: bench/console.py uses its Python load generator."
	$(BIN)/python bench/settle.py
	$(BIN)/python bench/console.py

clean:
	rm -rf $(VENV) db.sqlite3 sandbox.sqlite3 staticfiles test-artifacts
