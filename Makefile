# Two commands matter: `make demo` and `make test`. Both set everything up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
# the slowest tests of each pass, printed at its end (to size CI from its own log)
DURATIONS ?= --durations=15
JOBS ?= 4

.PHONY: help setup docker chromium hub-deps hub images demo test test-unit test-docker test-k8s test-notebooks bench lab clean-sandboxes clean

help:
	@echo "make demo   - set up, build, bring up a sandbox, run a scripted incident, print a scorecard"
	@echo "make test   - set up and run the whole test suite (Docker tests run for real)"
	@echo "make bench  - benchmarks with ratios against baselines measured in the same run"
	@echo "make lab    - JupyterLab 4 with the kit installed, for trainees"
	@echo "make hub    - JupyterHub for the cohort in labs/cohort.yaml (as root; HUB_ARGS=...)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,lab,hub]'
	@# rfc3987-syntax is an optional format checker of jsonschema (pulled in by jupyter-events)
	@# that compiles a grammar at import: 1.7-9 s added to every nbgrader process. Nothing here
	@# validates IRIs, so drop it; jsonschema skips the check when it is absent.
	$(BIN)/pip uninstall --quiet --yes rfc3987-syntax || true
	touch $(STAMP)

setup: $(STAMP)

docker:
	@.ci/ensure-docker

chromium:
	@.ci/ensure-chromium

# configurable-http-proxy from npm (hub/package.json, `npm ci`) and, where the kit's Python is
# not world-readable, a Python the trainees' accounts can run (see .ci/ensure-hub).
hub-deps:
	@PYTHON_BIN=$(BIN)/python .ci/ensure-hub

# The course's solutions must stay private to root: trainees are accounts on this machine.
HUB_ARGS ?=
hub: images hub-deps
	chmod -R go-rwx labs
	$(BIN)/labkit hub up --course labs $(HUB_ARGS)

images: setup docker
	$(BIN)/labkit images build

demo: images
	$(BIN)/labkit demo

# Three passes; each runs even when an earlier one failed (a CI log then shows every failure of
# the run), and the target fails if any did.
# 1: everything but the notebook proofs and the latency-judging tests, in parallel (every test has
#    its own sandbox); the hub's tests hold one worker, the tests that make or compare foreign
#    objects another, the rest spread over the others.
# 2: the notebook proofs: one pool of lab work (grading, nbval and lesson runs, LABKIT_TEST_JOBS at
#    a time, longest first) that the tests read, then the tamper suite alone (its attacks load the
#    machine on purpose). Both keep the CPU busy on their own: run beside pass 1, all took longer.
# 3: the latency-judging tests alone (the live labs of weeks 9, 10 and 12, two runs at a time, then
#    the sandbox tests of the latency faults), so no other test's load skews (or fakes) an SLO
#    verdict. (Run beside the labs' pool on a second worker they took 6 instead of 12 minutes, and
#    under a CPU hog two p95 verdicts of a healthy sandbox failed: kept serial.)
test: images chromium hub-deps
	@failed=""; \
	$(BIN)/pytest -n $(JOBS) --dist loadgroup -m "not latency" --ignore=tests/notebooks $(DURATIONS) $(PYTEST_ARGS) || failed="$$failed 1"; \
	$(BIN)/pytest -m "not latency" tests/notebooks $(DURATIONS) $(PYTEST_ARGS) || failed="$$failed 2"; \
	LABKIT_TEST_JOBS=2 $(BIN)/pytest -m latency $(DURATIONS) $(PYTEST_ARGS) || failed="$$failed 3"; \
	if [ -n "$$failed" ]; then echo "make test: pass(es)$$failed failed"; exit 1; fi

test-unit: setup
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-docker: images
	$(BIN)/pytest tests/integration/docker $(PYTEST_ARGS)

test-k8s: setup
	$(BIN)/pytest tests/integration/k8s --with-cluster $(PYTEST_ARGS)

test-notebooks: images
	$(BIN)/pytest tests/notebooks $(PYTEST_ARGS)

bench: images
	$(BIN)/python bench/run.py

# nbgrader calls `alembic` from PATH; formgrader finds the course through JUPYTER_CONFIG_PATH;
# Jupyter refuses root unless told.
LAB_ARGS ?=
lab: setup
	PATH="$(abspath $(BIN)):$$PATH" JUPYTER_CONFIG_PATH="$(abspath labs)" \
	  $(BIN)/jupyter lab --notebook-dir=. --ServerApp.ip=127.0.0.1 \
	  $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

clean-sandboxes: setup
	$(BIN)/labkit sandbox down

clean:
	rm -rf $(VENV) build .pytest_cache
