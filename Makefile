# carebridge: every target bootstraps its own virtualenv from the lock file, so a machine with
# only Python 3.11+ and make can run `make run` or `make test` straight after a clone.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := requirements.lock

HOST     ?= 127.0.0.1
PORT     ?= 8700
SANDBOX_PORT ?= 8701
SEED     ?= 42
PATIENTS ?= 2000
RUN_PATIENTS ?= 120
# pytest-xdist workers for `make test`: one per core (`TEST_WORKERS=0` runs in one process)
TEST_WORKERS ?= auto
# the tenant `make bench` syncs against dlt (issue 13 measures at 10,000 patients)
BENCH_PATIENTS ?= 10000

.PHONY: install tools run sandbox test test-slow test-all test-services chaos chaos-short lint type check fmt bench lock clean

$(STAMP): $(LOCK) pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "carebridge needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r $(LOCK)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e ".[sandbox]"
	touch $(STAMP)

install: $(STAMP)

## tools: openapi-python-client in a virtualenv of its own (.venv-tools): it pins a typer that
## conflicts with ours, so it stays out of the lock. tests/contract generates a client with it.
TOOLS := .venv-tools
$(TOOLS)/.installed:
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	echo '*' > $(TOOLS)/.gitignore
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check openapi-python-client==0.29.1
	touch $@

tools: $(TOOLS)/.installed

## run: the emulated CareCloud on a loopback port and carebridge against it (SQLite), with curl lines
run: $(STAMP)
	$(BIN)/carebridge run --host $(HOST) --port $(PORT) --sandbox-port $(SANDBOX_PORT) --seed $(SEED) --patients $(RUN_PATIENTS)

## sandbox: only the emulated CareCloud tenant
sandbox: $(STAMP)
	$(BIN)/carebridge sandbox serve --host $(HOST) --port $(PORT) --seed $(SEED) --patients $(PATIENTS)

## test: the default suite (no PostgreSQL, Redis, slow or live tests), on one worker per core
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

## test-services: the tests that need the PostgreSQL and Redis servers (the chaos long forms aside: `make chaos`)
test-services: $(STAMP)
	$(BIN)/python -m pytest -q -m '(postgres or redis) and not chaos' ; rc=$$?; if [ $$rc -eq 5 ]; then echo "no postgres/redis tests selected"; exit 0; fi; exit $$rc

## chaos: the chaos suite's long form (R1-R4: more seeds, kills and duplicates; PostgreSQL too), then its figures
chaos: $(STAMP)
	CHAOS_REPORT=$${CHAOS_REPORT:-.chaos-report.jsonl} $(BIN)/python -m pytest -q -p no:cacheprovider tests/chaos -m 'not live'

## chaos-short: the short form CI runs on PostgreSQL (SQLite's short form is part of `make test`)
chaos-short: $(STAMP)
	$(BIN)/python -m pytest -q tests/chaos -m 'postgres and not chaos'

## test-slow: the tests marked slow (the full-size forms of default tests; about 7 minutes, not in CI)
test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m 'slow and not postgres and not redis and not live and not chaos'

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ''

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

type: $(STAMP)
	$(BIN)/mypy

check: lint type test

## bench: every benchmark, each printing its ratio against a peer measured in the same run (3 rounds, spread)
bench: $(STAMP)
	$(BIN)/python bench/sandbox_appointments.py
	$(BIN)/python bench/activity.py 2000
	$(BIN)/python bench/api_read.py
	$(BIN)/python bench/audit.py
	$(BIN)/python bench/api_write.py
	UVLOOP=1 $(BIN)/python bench/transport.py
	$(BIN)/python bench/mapping.py
	$(BIN)/python bench/sandbox_requests.py --pairs 2000 --rounds 3
	$(BIN)/python bench/sync.py --patients $(BENCH_PATIENTS) --skip-latency
	$(BIN)/python bench/webhook_latency.py
	$(BIN)/python bench/mcp_stdio.py

## lock: re-resolve requirements.lock from pyproject.toml (needs uv; not part of the bootstrap)
lock:
	uv pip compile pyproject.toml --extra sandbox --extra dev --python-version 3.11 --quiet -o $(LOCK)

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
