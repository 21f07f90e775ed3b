# Two commands do all set-up on a fresh machine:
#   make up     install, then run all three services on the embedded SQLite default
#   make test   install, then run the whole test suite (PostgreSQL required; see README)
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
DOSIS_REQUIRE_POSTGRES ?= 1
export DOSIS_REQUIRE_POSTGRES

.PHONY: install up test generate lint

$(VENV)/.installed: pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e clients/python -e '.[test]'
	touch $@

# `npm install` (not `npm ci`): npm 11 leaves other platforms' optional buf binaries out of
# the lock file and `npm ci` then refuses it; install still follows the lock's versions.
node_modules/.installed: package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed

up: install
	$(VENV)/bin/dosis up

test: install node_modules/.installed
	$(PY) -m pytest -q

generate: install
	$(PY) scripts/generate_protos.py

lint: install node_modules/.installed
	$(PY) scripts/buf_lint.py
