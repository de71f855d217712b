# One entry point for people and CI. `make demo` and `make test` work on a fresh clone:
# they create .venv with the pinned versions (constraints.txt) when it is missing or stale.
#
# AIRFLOW=3.0|3.1|3.2 runs a target on an older Airflow 3 instead of the newest (3.3): its own
# venv (.venv-3.0 ...) from its own pins (constraints-3.0.txt ...), e.g. `make test AIRFLOW=3.0`,
# `make e2e AIRFLOW=3.0`. `make test-matrix` runs the whole suite on every supported minor.
PYTHON ?= python3
AIRFLOW ?=
MINORS := 3.3 3.2 3.1 3.0
ifeq ($(AIRFLOW),3.3)
override AIRFLOW :=
endif
ifneq ($(filter-out 3.0 3.1 3.2,$(AIRFLOW)),)
$(error AIRFLOW must be one of $(MINORS) (empty: the newest), got '$(AIRFLOW)')
endif
VENV        := .venv$(if $(AIRFLOW),-$(AIRFLOW))
CONSTRAINTS := constraints$(if $(AIRFLOW),-$(AIRFLOW)).txt
# Before 3.2 the connection form's extra fields come from the hook's wtforms widgets.
COMMA       := ,
EXTRAS      := test$(if $(filter 3.0 3.1,$(AIRFLOW)),$(COMMA)form)
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test suite test-matrix lint format emulator bench clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11, 5) else "make: the pinned environment ($(CONSTRAINTS)) needs Python 3.11.5+, found " + sys.version.split()[0] + "; set PYTHON=python3.11 (or newer)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e ".[$(EXTRAS)]"
	@touch $(STAMP)

install: $(STAMP)  ## create/refresh the virtualenv with the pinned versions

demo: $(STAMP)  ## run the example sync DAG end to end against the bundled emulator
	RTCIM_VENV=$(CURDIR)/$(VENV) bash scripts/demo.sh

test: $(STAMP)  ## lint, then the whole test suite (starts its own emulators on loopback)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

suite: $(STAMP)  ## the whole test suite without the lint (one leg of test-matrix)
	$(BIN)/pytest

# The whole suite on every supported Airflow minor (newest first), each in its own venv; every
# leg runs even when one fails, and the summary gives each leg's result and time.
test-matrix: lint
	@failed=""; summary=""; \
	for minor in $(MINORS); do \
	  start=$$(date +%s); \
	  if $(MAKE) --no-print-directory suite AIRFLOW=$$minor; then result=passed; else result=FAILED; failed="$$failed $$minor"; fi; \
	  summary="$$summary\ntest-matrix: Airflow $$minor $$result in $$(( $$(date +%s) - start )) s (venv build included)"; \
	done; \
	printf "$$summary\n"; \
	if [ -n "$$failed" ]; then echo "test-matrix: FAILED on Airflow$$failed"; exit 1; fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

emulator: $(STAMP)  ## start the emulator in the foreground (Ctrl-C stops it)
	$(BIN)/python -m airflow_provider_rtcim.emulator --port 8080

bench: $(STAMP)  ## run the benchmarks; prints a table and writes benchmarks/results/latest.md
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf .airflow demo-output build *.egg-info .pytest_cache .ruff_cache

# ---- deployment tests (issue #13): a real Airflow, see docs/deployment-tests.md ------------------
# The deployment runs from .venv; the test runner (pytest, selenium, boto3) has its own small venv, and
# the Celery recipe its own venv (Airflow + the Celery provider + Postgres drivers).
E2E_VENV      := .venv-e2e
E2E_STAMP     := $(E2E_VENV)/.installed-stamp
CELERY_VENV   := .venv-celery
CELERY_STAMP  := $(CELERY_VENV)/.installed-stamp

$(E2E_STAMP): constraints.txt constraints-e2e.txt
	@test -x $(E2E_VENV)/bin/python || $(PYTHON) -m venv $(E2E_VENV)
	$(E2E_VENV)/bin/python -m pip install --quiet --upgrade "pip>=24"
	$(E2E_VENV)/bin/python -m pip install --quiet -c constraints.txt -c constraints-e2e.txt \
		pytest pytest-timeout requests psutil selenium boto3
	@touch $(E2E_STAMP)

$(CELERY_STAMP): pyproject.toml constraints.txt constraints-celery.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11, 5) else "make: the pinned environment needs Python 3.11.5+")'
	@test -x $(CELERY_VENV)/bin/python || $(PYTHON) -m venv $(CELERY_VENV)
	$(CELERY_VENV)/bin/python -m pip install --quiet --upgrade "pip>=24"
	$(CELERY_VENV)/bin/python -m pip install --quiet -c constraints.txt -c constraints-celery.txt -e ".[celery]"
	@touch $(CELERY_STAMP)

.PHONY: e2e e2e-celery
e2e: $(STAMP) $(E2E_STAMP)  ## a real Airflow (api-server, scheduler, dag-processor, triggerer) + the UI in Chromium
	RTCIM_E2E_AIRFLOW_VENV=$(CURDIR)/$(VENV) bash scripts/e2e.sh

e2e-celery: $(CELERY_STAMP)  ## the example mapped DAG on CeleryExecutor: Postgres, Redis, two workers
	bash scripts/celery_e2e.sh
