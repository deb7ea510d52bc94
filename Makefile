# Two commands for a newcomer: `make run` and `make test`. Both install exactly the versions in requirements/.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test
PIP_COMPILE := $(BIN)/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe

.PHONY: run test lint bench soak lock check-lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The lock files pin every package with its hashes; the project itself goes in on top without resolving anything.
$(STAMP_RUN): requirements/run.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements/run.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(STAMP_TEST): requirements/test.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements/test.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@ $(STAMP_RUN)

run: $(STAMP_RUN)
	$(BIN)/atomshop up

# Two pytest-xdist workers, each taking whole test files (module fixtures start their servers once): most tests
# wait on servers and processes, so two at a time fit 2 cores. TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 2
test: $(STAMP_TEST)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP_TEST)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP_TEST)
	@failed=""; for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || failed="$$failed $$script"; done; \
	if [ -n "$$failed" ]; then echo "missed their targets:$$failed"; exit 1; fi

soak: $(STAMP_TEST)
	$(BIN)/python -m pytest -m soak tests/integration $(PYTEST_ARGS)

# Refresh the lock files after a change to pyproject.toml's dependencies; `make lock UPGRADE=flask` moves one
# package to its newest version, `make lock UPGRADE=all` every package.
lock: | $(BIN)/python
	$(BIN)/pip install --quiet pip-tools
	$(PIP_COMPILE) $(if $(UPGRADE),$(if $(filter all,$(UPGRADE)),--upgrade,--upgrade-package $(UPGRADE))) -o requirements/run.txt pyproject.toml
	$(PIP_COMPILE) $(if $(UPGRADE),$(if $(filter all,$(UPGRADE)),--upgrade,--upgrade-package $(UPGRADE))) --extra test -o requirements/test.txt pyproject.toml

# What is installed, against the lock: CI prints it, so its log shows the versions a run used.
check-lock: $(STAMP_TEST)
	$(BIN)/python -m tests.lockcheck requirements/test.txt

clean:
	rm -rf $(VENV) data .pytest_cache
