# The two commands: `make run` serves the platform, `make test` checks everything.
# Both create .venv and install requirements when needed; there is no other set-up step.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DB_PREFIX ?= platform
PG_URL ?= postgresql://postgres@127.0.0.1:5432
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test lint bench install install-dev check-services clean

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: requirements/base.txt requirements/production.txt | $(VENV)/bin/activate
	$(PIP) install --quiet -r requirements/production.txt
	touch $@

$(VENV)/.installed-dev: requirements/base.txt requirements/dev.txt | $(VENV)/bin/activate
	$(PIP) install --quiet -r requirements/dev.txt
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## run: install, migrate every database, seed, serve with gunicorn on $HOST:$PORT (127.0.0.1:8000);
## first `python -m config.gunicorn` checks the variables gunicorn reads before its config file
run: install
	$(PY) -m config.gunicorn
	$(PY) manage.py migrate_all
	$(PY) manage.py seed $(SEED_ARGS)
	DJANGO_SETTINGS_MODULE=$${DJANGO_SETTINGS_MODULE:-config.settings.local} $(VENV)/bin/gunicorn --config config/gunicorn.py

## test: install dev tools, check Postgres and Redis, then lint, contracts, types and the suite
test: install-dev
	@mkdir -p var
	DB_PREFIX=$(DB_PREFIX) PG_URL=$(PG_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) $(PY) scripts/check_services.py
	$(MAKE) --no-print-directory lint
	DB_PREFIX=$(DB_PREFIX) TEST_POSTGRES=$(PG_URL) TEST_REDIS_URL=$(TEST_REDIS_URL) \
		$(PY) -m pytest --cov --cov-report=term:skip-covered --cov-report=json:var/coverage.json $(PYTEST_ARGS)
	$(PY) scripts/coverage_gates.py var/coverage.json

## lint: ruff (lint and format check), import-linter contracts, mypy on core/, a valid OpenAPI schema
lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	@mkdir -p var
	$(PY) manage.py spectacular --validate --fail-on-warn --file var/openapi.yaml

## bench: run every benchmark in bench/ (needs Postgres and Redis, like the tests)
bench: install-dev
	@for script in $(sort $(wildcard bench/bench_*.py)); do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf var/db var/mail var/prometheus var/static var/coverage.json
