# AIOS Marketplace. `make run` serves the demo, `make test` runs the suite (see README).
# With DATABASE_URL / REDIS_URL set, both use PostgreSQL / Redis instead of SQLite / files.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
BIND ?= 127.0.0.1:8000
SCALE ?= small

.PHONY: help venv install install-dev run serve migrate seed static test test-fast lint format \
        check bench bench-smoke lighthouse audit clean

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

# Each step of `make run` says what it does first: a first run spends a minute or two installing
# and collecting static files, a second one a few seconds.
$(VENV)/bin/python:
	@echo "==> Creating the virtualenv $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	@echo "==> Installing requirements.txt into $(VENV) (a minute or so the first time)"
	$(PIP) install --progress-bar off -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	@echo "==> Installing requirements-dev.txt into $(VENV)"
	$(PIP) install --quiet -r requirements-dev.txt
	@touch $@ $(VENV)/.runtime

install: $(VENV)/.runtime ## Create the virtualenv and install the runtime requirements

install-dev: $(VENV)/.dev ## ... plus the development and test tools

migrate: install
	@echo "==> Migrating the database ($${DATABASE_URL:-SQLite in var/})"
	$(PY) manage.py migrate --noinput

seed: migrate ## Load the demo data set (SCALE=small|bench|N); a no-op when data exists
	@echo "==> Demo data (SCALE=$(SCALE); skipped when the database has agents)"
	$(PY) manage.py seed_demo --scale $(SCALE) --skip-if-present

static: install ## Collect, hash and compress static files (skipped when nothing changed)
	@echo "==> Static files"
	$(PY) manage.py collectstatic_if_stale --noinput

# migrate + seed + static in one process (manage.py prepare_site): two Django start-ups fewer.
run: install ## Set everything up and serve http://127.0.0.1:8000 with gunicorn
	@$(PY) manage.py prepare_site --scale $(SCALE)
	@echo "==> Serving on http://$(BIND)/ with gunicorn (Ctrl-C stops)"
	BIND=$(BIND) $(VENV)/bin/gunicorn -c aios/gunicorn.conf.py

test: install-dev ## Run the whole suite (PostgreSQL + Redis when DATABASE_URL / REDIS_URL are set)
	$(PY) manage.py check --fail-level WARNING
	$(PY) -m pytest $(PYTEST_ARGS)

node_modules/.bin/lighthouse:
	npm install --no-save --no-audit --no-fund --loglevel=error lighthouse@12

lighthouse: seed static node_modules/.bin/lighthouse ## Lighthouse mobile runs (median of 3): home, browse, agent page
	CHROME_PATH=$${CHROME_PATH:-/usr/bin/chromium} $(PY) manage.py lighthouse --runs 3

lint: install-dev ## ruff check + format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Every pin is looked up (no resolution: the files pin everything); --strict fails the run when
# a package could not be checked, so "no known vulnerabilities" is never said about nothing.
AUDIT_SERVICE ?= pypi
audit: install-dev ## Check the pinned requirements for known vulnerabilities (AUDIT_SERVICE=pypi|osv)
	$(VENV)/bin/pip-audit --vulnerability-service $(AUDIT_SERVICE) -r requirements-dev.txt \
	  --no-deps --disable-pip --strict --progress-spinner off

format: install-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The bench needs PostgreSQL + Redis (DATABASE_URL / REDIS_URL, defaults in bench/config.py)
# and wrk; BENCH_ARGS passes flags (--with-10x, --sections query,load, ...).
WRK := command -v wrk >/dev/null 2>&1 || apt-get install -y -qq wrk >/dev/null 2>&1 || \
	echo "wrk not installed: the endpoint and load sections will say 'not measured'"

# The edge section starts a varnishd of its own (the package's service is not used).
VARNISH := test -x /usr/sbin/varnishd || apt-get install -y -qq varnish varnish-modules \
	>/dev/null 2>&1 || echo "varnishd not installed: the edge section will say 'not measured'"

bench: install ## The performance report: bench/results/REPORT.md and results.json
	@$(WRK)
	@$(VARNISH)
	$(PY) -m bench $(BENCH_ARGS)

bench-smoke: install ## The bench harness on small data, in seconds (checks it, measures nothing)
	@$(WRK)
	@$(VARNISH)
	$(PY) -m bench --smoke $(BENCH_ARGS)

clean: ## Remove the virtualenv and local data (SQLite database, cache, static, media)
	rm -rf $(VENV) var
