# tplab: every target works from a fresh clone; the virtual environment lives in .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SYSSTAMP := $(VENV)/.sysdeps
# Debian packages the kernel backend, the browser tests and report screenshots use
# (installed only when root).
DEBS := iproute2 nftables chromium

.PHONY: install sysdeps run test lint fmt bench soak clean

install: $(STAMP) sysdeps

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

sysdeps: $(SYSSTAMP)

$(SYSSTAMP): Makefile
	@mkdir -p $(VENV)
	@missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: Debian packages missing ($$missing); kernel-backend tests will be skipped"; fi; \
	fi
	@touch $(SYSSTAMP)

run: install
	$(VENV)/bin/tplab up

# two workers (the CI machine has two cores), a test file per worker at a time: every
# test picks its own addresses and dirs; the bench smoke tests share the default lab's
# addresses, so they stay on one worker (one file)
test: install lint
	$(PY) -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

fmt: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) -m emulator.bench

soak: install
	HYPOTHESIS_PROFILE=soak TPLAB_REAL_SCENARIOS=all TPLAB_REAL_LABS=all TPLAB_REPLICATION_EXAMPLES=10000 TPLAB_CLUSTER_EXAMPLES=10000 TPLAB_FAILOVER_EXAMPLES=500 TPLAB_PLACEMENT_EXAMPLES=500 $(PY) -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis bench-results test-artifacts
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
