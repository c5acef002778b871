# make demo   the three scripts end to end against Azurite and the local Batch emulator
# make local  Azurite and the Batch emulator in the foreground for your own work (Ctrl-C stops
#             both); writes .local/local.env and prints the export line to use it
# make test   lint, then the whole test suite (what CI runs)
# make lint   ruff and mypy, with the settings in pyproject.toml
# make setup  .venv (requirements-dev.txt) and Azurite (tools/azurite); each is
#             redone only when its requirements or lockfile changed
# make clean  removes .local, outputs and Azurite's node_modules; distclean: .venv too

PYTHON ?= python3
VENV := .venv
VENV_PYTHON := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.requirements-installed
AZURITE_DIR := tools/azurite
AZURITE_STAMP := $(AZURITE_DIR)/node_modules/.lockfile-installed
# Two pytest-xdist workers (the machines have 2 cores; most of a test's time is spent waiting on its
# subprocesses), each with its own Azurite and Batch emulator; --dist loadfile keeps a file on one worker,
# so a module's fixtures start once and tests that share one machine-wide resource run one after the other
# (tests/e2e/test_isolated_nodes.py: network namespaces, routes, the host's Open MPI). Files go out in
# collection order (--no-loadscope-reorder): the slow e2e files first, the many quick unit files fill the end
# (by default xdist sends files with few tests last, and those are the slow ones). PYTEST_FLAGS="-q" runs the
# suite in one process.
PYTEST_FLAGS ?= -q -ra --durations=5 -n 2 --dist loadfile --no-loadscope-reorder

.PHONY: setup demo local lint test clean distclean

setup: $(VENV_STAMP) $(AZURITE_STAMP)

$(VENV_STAMP): requirements.txt requirements-dev.txt
	@test -x $(VENV_PYTHON) || $(PYTHON) -m venv $(VENV)
	$(VENV_PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

$(AZURITE_STAMP): $(AZURITE_DIR)/package.json $(AZURITE_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: install Node.js 20 or newer (it comes with npm), then run: make setup" >&2; exit 2; }
	npm ci --prefix $(AZURITE_DIR) --no-audit --no-fund --loglevel=error
	@touch $@

demo: setup
	$(VENV_PYTHON) -m tools.demo

local: setup
	$(VENV_PYTHON) -m tools.local

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# pytest exits 5 when it collects no test: that fails the target like any other failure.
test: setup lint
	@$(VENV_PYTHON) -m pytest tests $(PYTEST_FLAGS) || { status=$$?; \
		if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; exit $$status; }

clean:
	rm -rf .local outputs $(AZURITE_DIR)/node_modules .pytest_cache .mypy_cache .ruff_cache

distclean: clean
	rm -rf $(VENV)

# make demo-nodes   (root) the three scripts on 3 isolated emulated nodes: network namespaces with
#                   sshd, install.sh run for real by the job preparation task, mpirun as _azbatch
.PHONY: demo-nodes
demo-nodes: setup
	@if [ "$$(id -u)" -ne 0 ]; then echo "make demo-nodes needs root (network namespaces, sshd, users, apt): run it with sudo; make demo needs no root" >&2; exit 2; fi
	$(VENV_PYTHON) -m tools.demo_nodes
