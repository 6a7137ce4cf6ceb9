# make demo: set up and run the demo on the embedded default (local processes, built-in proxy, SQLite).
# make test: set up everything the tests need (Python deps, Debian packages) and run the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint unit integration system-test system-bench bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || \
		(scripts/system-deps.sh python3-venv && rm -rf $(VENV) && $(PYTHON) -m venv $(VENV))
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,postgres,docker,mcp]'
	@touch $(STAMP)

system-test:
	@scripts/system-deps.sh postgresql postgresql-client docker.io prometheus prometheus-alertmanager restic chromium fonts-wqy-zenhei

system-bench:
	@scripts/system-deps.sh haproxy nginx wrk

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest tests/unit

# dockerd is started for the container tests and stopped afterwards, even when tests fail. The
# suite runs on two workers (pytest-xdist); tests marked docker share one engine and run after,
# one at a time;
# pytest's exit status (exit 5 for 'no tests' included) is what make returns.
test: $(STAMP) system-test lint
	@trap 'scripts/dockerd.sh stop' EXIT; scripts/dockerd.sh start && $(BIN)/pytest -n 2 -m "not docker" && $(BIN)/pytest -m docker

demo: $(STAMP)
	$(BIN)/python examples/demo.py

bench: $(STAMP) system-bench
	$(BIN)/python bench/proxy.py

clean:
	rm -rf $(VENV) .zerodown .pytest_cache .mypy_cache .ruff_cache
